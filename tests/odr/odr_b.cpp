// Translation unit B of the ODR check: the same computation written differently (hvp and
// backward instead of grad), so both TUs instantiate overlapping inline templates.
#include <grokalign/grokalign.hpp>
#include <grokalign/testing.hpp>

double odr_b_grad() {
  using namespace grokalign;
  Var<double> x(Tensor<double>::from(Shape{2}, {0.5, -1.0}), true);
  sum(tanh(x) * x).backward();
  return x.grad().at(0);
}

bool odr_b_harness_ok() {
  using namespace grokalign;
  auto f = [](const auto& xs) { return sum(tanh(xs[0]) * xs[0]); };
  return testing::gradcheck(
             f, std::vector<Tensor<double>>{Tensor<double>::from(Shape{2}, {0.5, -1.0})})
      .ok;
}
