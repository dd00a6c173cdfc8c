#include <cstdio>
#include <grokalign/grokalign.hpp>
int main() {
  using namespace grokalign;
  Var<double> x(Tensor<double>::from({3}, {1.0, 2.0, 3.0}), true);
  Var<double> y = sum(x * x);
  auto g = grad({y}, {x});
  const double* d = g[0].value().data();
  bool ok = d[0] == 2.0 && d[1] == 4.0 && d[2] == 6.0;
  std::printf("consumer: %s\n", ok ? "ok" : "wrong");
  return ok ? 0 : 1;
}
