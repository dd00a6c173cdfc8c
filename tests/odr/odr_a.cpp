// Translation unit A of the ODR check: uses the library (and the testing harness) on its own.
#include <grokalign/grokalign.hpp>
#include <grokalign/testing.hpp>

// d/dx sum(tanh(x) * x) at x = [0.5, -1.0], first entry; plus the harness on the same map.
double odr_a_grad() {
  using namespace grokalign;
  Var<double> x(Tensor<double>::from(Shape{2}, {0.5, -1.0}), true);
  const Var<double> y = sum(tanh(x) * x);
  return grad<double>({y}, {x})[0].value().at(0);
}

bool odr_a_harness_ok() {
  using namespace grokalign;
  auto f = [](const auto& xs) { return sum(tanh(xs[0]) * xs[0]); };
  return testing::gradcheck(
             f, std::vector<Tensor<double>>{Tensor<double>::from(Shape{2}, {0.5, -1.0})})
      .ok;
}
