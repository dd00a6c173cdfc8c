// The headers link from several translation units (odr_a.cpp, odr_b.cpp and this one): no
// non-inline definitions, and thread-local caches and counters are shared consistently.
#include <catch2/catch.hpp>
#include <cmath>
#include <grokalign/grokalign.hpp>

double odr_a_grad();
double odr_b_grad();
bool odr_a_harness_ok();
bool odr_b_harness_ok();

TEST_CASE("the library links from two translation units", "[odr]") {
  const double a = odr_a_grad();
  const double b = odr_b_grad();
  // d/dx tanh(x) x = tanh(x) + x (1 - tanh^2(x)) at 0.5
  const double t = std::tanh(0.5);
  const double expected = t + 0.5 * (1 - t * t);
  CHECK(a == Approx(expected).epsilon(1e-14));
  CHECK(b == Approx(expected).epsilon(1e-14));
  CHECK(a == b);
  CHECK(odr_a_harness_ok());
  CHECK(odr_b_harness_ok());

  // And from this TU too, interleaved with the others.
  using namespace grokalign;
  Var<double> x(Tensor<double>::from(Shape{2}, {0.5, -1.0}), true);
  const Var<double> y = sum(tanh(x) * x);
  CHECK(odr_a_grad() == a);
  CHECK(grad<double>({y}, {x})[0].value().at(0) == a);
}
