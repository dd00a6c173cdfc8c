// Misuse is reported with a typed exception whose message names the operation and the
// shapes involved; non-finite values flow through without crashing.
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <grokalign/grokalign.hpp>
#include <limits>
#include <stdexcept>
#include <vector>

using namespace grokalign;
using Catch::Contains;

namespace {
using Td = Tensor<double>;
using Vd = Var<double>;
using Dd = Dual<Td>;
}  // namespace

TEST_CASE("shape mismatch in add names the op and both shapes", "[errors]") {
  const Td a = Td::zeros(Shape{2, 3}), b = Td::zeros(Shape{3, 2});
  CHECK_THROWS_AS(add(a, b), ShapeError);
  CHECK_THROWS_WITH(add(a, b), Contains("add") && Contains("[2, 3]") && Contains("[3, 2]"));
  CHECK_THROWS_WITH(a + b, Contains("add") && Contains("[2, 3]") && Contains("[3, 2]"));
  // On Vars (recording or not) and Duals alike.
  Vd va(a, true), vb(b);
  CHECK_THROWS_AS(va + vb, ShapeError);
  CHECK_THROWS_WITH(va + vb, Contains("add") && Contains("[2, 3]") && Contains("[3, 2]"));
  CHECK_THROWS_WITH(Dd(a, a) + Dd(b, b),
                    Contains("add") && Contains("[2, 3]") && Contains("[3, 2]"));
  CHECK_THROWS_WITH(va * vb, Contains("mul") && Contains("[2, 3]") && Contains("[3, 2]"));
  CHECK_THROWS_WITH(va - Vd(Td::zeros(Shape{4})),
                    Contains("sub") && Contains("[2, 3]") && Contains("[4]"));
  try {
    (void)(va + vb);
    FAIL("no exception");
  } catch (const ShapeError& e) {
    CHECK(e.op() == "add");
  }
  // A ShapeError is a grokalign::Error is a std::runtime_error.
  CHECK_THROWS_AS(va + vb, Error);
  CHECK_THROWS_AS(va + vb, std::runtime_error);
}

TEST_CASE("shape mismatch in matmul names the op and both shapes", "[errors]") {
  const Td a = Td::zeros(Shape{2, 3}), b = Td::zeros(Shape{2, 3});
  CHECK_THROWS_AS(matmul(a, b), ShapeError);
  CHECK_THROWS_WITH(matmul(a, b), Contains("matmul") && Contains("[2, 3]"));
  CHECK_THROWS_WITH(matmul(Vd(a, true), Vd(Td::zeros(Shape{4, 5}))),
                    Contains("matmul") && Contains("[2, 3]") && Contains("[4, 5]"));
  CHECK_THROWS_WITH(matmul(Td::zeros(Shape{3}), b), Contains("matmul") && Contains("[3]"));
  CHECK_NOTHROW(matmul(a, b, false, true));
}

TEST_CASE("autodiff misuse raises AutodiffError", "[errors]") {
  Vd x(Td::from(Shape{2, 3}, {1, 2, 3, 4, 5, 6}), true);
  const Vd y = x * x;

  SECTION("backward on a non-scalar without upstream") {
    CHECK_THROWS_AS(y.backward(), AutodiffError);
    CHECK_THROWS_WITH(y.backward(), Contains("backward") && Contains("[2, 3]"));
    CHECK_THROWS_AS(y.backward(Td::zeros(Shape{3, 2})), ShapeError);
    CHECK_NOTHROW(y.backward(Td::ones(Shape{2, 3})));
  }
  SECTION("grad of an input not in the graph") {
    Vd other(Td::zeros(Shape{3}), true);
    CHECK_THROWS_AS(grad<double>({sum(y)}, {x, other}), AutodiffError);
    CHECK_THROWS_WITH(grad<double>({sum(y)}, {x, other}), Contains("grad") && Contains("input 1") &&
                                                              Contains("[3]") &&
                                                              Contains("allow_unused"));
    // An unrelated intermediate too.
    const Vd side = exp(other);
    CHECK_THROWS_AS(grad<double>({sum(y)}, {side}), AutodiffError);
  }
  SECTION("grad of an output that does not require grad") {
    const Vd c(Td::ones(Shape{2}));
    CHECK_THROWS_AS(grad<double>({sum(c)}, {x}), AutodiffError);
    CHECK_THROWS_WITH(grad<double>({sum(c)}, {x}), Contains("does not require grad"));
    CHECK_THROWS_AS(sum(c).backward(), AutodiffError);
    Vd z;
    {
      NoGradGuard guard;
      z = sum(x * x);
    }
    CHECK_THROWS_AS(grad<double>({z}, {x}), AutodiffError);
  }
  SECTION("grad_outputs count and shape") {
    CHECK_THROWS_AS(grad<double>({y}, {x}, {Vd(Td::ones(Shape{2, 3})), Vd(Td::ones(Shape{2, 3}))}),
                    AutodiffError);
    CHECK_THROWS_WITH(
        grad<double>({y}, {x}, {Vd(Td::ones(Shape{2, 3})), Vd(Td::ones(Shape{2, 3}))}),
        Contains("2 grad_outputs") && Contains("1 outputs"));
    CHECK_THROWS_AS(grad<double>({y}, {x}, {Vd(Td::ones(Shape{3, 2}))}), ShapeError);
    CHECK_THROWS_WITH(grad<double>({y}, {x}, {Vd(Td::ones(Shape{3, 2}))}),
                      Contains("grad") && Contains("[3, 2]") && Contains("[2, 3]"));
    // A non-scalar output needs a grad_output.
    CHECK_THROWS_WITH(grad<double>({y}, {x}), Contains("[2, 3]"));
    CHECK_THROWS_AS(grad<double>({}, {x}), AutodiffError);
  }
  SECTION("set_requires_grad on a non-leaf") {
    Vd nonleaf = y;
    CHECK_THROWS_AS(nonleaf.set_requires_grad(false), AutodiffError);
    CHECK_THROWS_WITH(nonleaf.set_requires_grad(), Contains("set_requires_grad"));
    Vd d = y.detach();
    CHECK_NOTHROW(d.set_requires_grad());
  }
  SECTION("using an undefined Var") {
    const Vd u;
    CHECK_FALSE(u.defined());
    CHECK_FALSE(u.requires_grad());
    CHECK_THROWS_AS(u.value(), AutodiffError);
    CHECK_THROWS_AS(u.shape(), AutodiffError);
    CHECK_THROWS_AS(u.item(), AutodiffError);
    CHECK_THROWS_AS(u.detach(), AutodiffError);
    CHECK_THROWS_AS(u.backward(), AutodiffError);
    CHECK_THROWS_AS(exp(u), AutodiffError);
    CHECK_THROWS_WITH(exp(u), Contains("exp") && Contains("undefined"));
    CHECK_THROWS_AS(add(x, u), AutodiffError);
    CHECK_THROWS_AS(grad<double>({u}, {x}), AutodiffError);
    CHECK_THROWS_AS(grad<double>({sum(y)}, {u}), AutodiffError);
    CHECK_THROWS_AS(exp(Td()), AutodiffError);
  }
}

TEST_CASE("layout ops reject bad shapes and indices", "[errors]") {
  const Vd x(Td::zeros(Shape{2, 3}), true);
  SECTION("reshape to a wrong number of elements") {
    CHECK_THROWS_AS(reshape(x, Shape{4, 2}), ShapeError);
    CHECK_THROWS_WITH(reshape(x, Shape{4, 2}),
                      Contains("reshape") && Contains("[2, 3]") && Contains("[4, 2]"));
    CHECK_THROWS_AS(reshape(x.value(), Shape{5}), ShapeError);
  }
  SECTION("narrow out of range") {
    CHECK_THROWS_AS(narrow(x, 1, 2, 2), ShapeError);
    CHECK_THROWS_WITH(narrow(x, 1, 2, 2), Contains("narrow") && Contains("[2, 3]"));
    CHECK_THROWS_AS(narrow(x, 0, -1, 1), ShapeError);
    CHECK_THROWS_AS(narrow(x, 2, 0, 1), ShapeError);  // no axis 2
    CHECK_NOTHROW(narrow(x, 1, 1, 2));
  }
  SECTION("index_select with an out-of-range index") {
    CHECK_THROWS_AS(index_select(x, Indices({0, 2})), ShapeError);
    CHECK_THROWS_WITH(index_select(x, Indices({0, 2})),
                      Contains("index_select") && Contains("index 2"));
    CHECK_THROWS_AS(index_select(x, Indices({-1})), ShapeError);
    CHECK_NOTHROW(index_select(x, Indices({1, 0, 1})));
    CHECK_THROWS_AS(Indices({1, 2, 3}, Shape{2, 2}), ShapeError);
  }
  SECTION("one_hot with a bad label") {
    CHECK_THROWS_AS(one_hot<double>(Indices({0, 3}), 3), ShapeError);
    CHECK_THROWS_WITH(one_hot<double>(Indices({0, 3}), 3),
                      Contains("one_hot") && Contains("label 3"));
    CHECK_THROWS_AS(one_hot<double>(Indices({-1}), 3), ShapeError);
    CHECK_THROWS_AS(cross_entropy(x, Indices({0, 5})), ShapeError);
    CHECK_THROWS_AS(cross_entropy(x, Indices({0})), ShapeError);
  }
  SECTION("Tensor::from with a wrong count") {
    CHECK_THROWS_AS(Td::from(Shape{2, 3}, {1.0, 2.0}), ShapeError);
    CHECK_THROWS_WITH(Td::from(Shape{2, 3}, {1.0, 2.0}),
                      Contains("Tensor::from") && Contains("2 values") && Contains("[2, 3]"));
  }
  SECTION("other layout misuse") {
    CHECK_THROWS_AS(transpose(x, 0, 2), ShapeError);
    CHECK_THROWS_AS(sum(x, {2}), ShapeError);
    CHECK_THROWS_AS(concat(std::vector<Vd>{x, Vd(Td::zeros(Shape{2, 2}))}, 0), ShapeError);
    CHECK_THROWS_AS(stack(std::vector<Vd>{x, Vd(Td::zeros(Shape{3, 2}))}), ShapeError);
    CHECK_THROWS_AS(broadcast_to(x, Shape{3, 3}), ShapeError);
    CHECK_THROWS_AS(mse(x, Td::zeros(Shape{3, 2})), ShapeError);
    CHECK_THROWS_AS(x.value().rows(1, 5), ShapeError);
  }
}

TEST_CASE("jvp_graph rejects bad tangents", "[errors]") {
  Vd x(Td::zeros(Shape{2, 3}), true);
  const Vd y = exp(x);
  CHECK_THROWS_AS(jvp_graph<double>({y}, {x}, {Td::zeros(Shape{3, 2})}), ShapeError);
  CHECK_THROWS_WITH(jvp_graph<double>({y}, {x}, {Td::zeros(Shape{3, 2})}),
                    Contains("jvp_graph") && Contains("[3, 2]") && Contains("[2, 3]"));
  CHECK_THROWS_AS(jvp_graph<double>({y}, {x}, {}), AutodiffError);
  CHECK_THROWS_AS(jvp_graph<double>({y}, {x}, {Td()}), AutodiffError);
  CHECK_THROWS_AS(jvp_graph<double>({Vd()}, {x}, {Td::zeros(Shape{2, 3})}), AutodiffError);
  // A failed call leaves the graph usable.
  const auto t = jvp_graph<double>({y}, {x}, {Td::ones(Shape{2, 3})});
  for (double v : t[0]) CHECK(v == 1.0);  // exp'(0) = 1
}

TEST_CASE("NaN and infinity inputs do not crash", "[errors]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  Vd x(Td::from(Shape{3}, {nan, 1.0, inf}), true);
  const Vd e = exp(x);
  CHECK(std::isnan(e.value().at(0)));
  CHECK(e.value().at(1) == Approx(std::exp(1.0)));
  CHECK(std::isinf(e.value().at(2)));

  const Vd y = sum(e);
  CHECK(std::isnan(y.item()));
  std::vector<Vd> g;
  REQUIRE_NOTHROW(g = grad<double>({y}, {x}));
  CHECK(std::isnan(g[0].value().at(0)));
  CHECK(g[0].value().at(1) == Approx(std::exp(1.0)));
  REQUIRE_NOTHROW(y.backward());
  CHECK(std::isnan(x.grad().at(0)));

  // Second order with NaNs runs too.
  const Vd g1 = grad<double>({y}, {x}, {}, {.create_graph = true})[0];
  REQUIRE_NOTHROW(grad<double>({sum(g1)}, {x}));
  // log of a negative number and sqrt of a negative number give NaN values, not exceptions.
  CHECK(std::isnan(log(Td::from(Shape{1}, {-1.0})).item()));
  CHECK(std::isnan(sqrt(Td::from(Shape{1}, {-1.0})).item()));
}

namespace {
// Identity whose derivative rules throw while `armed`: an error raised in the middle of a
// pass (as a user rule might) must not leave state behind in the graph.
struct ThrowingIdentity : RuleBase {
  static constexpr const char* kName = "throwing_identity";
  struct Params {};
  static inline bool armed = false;
  static Td forward(const Params&, const Td* in) { return in[0].clone(); }
  template <class X>
  static X jvp(const Params&, const X* t, const X*, const X&) {
    if (armed) throw std::runtime_error("throwing_identity: jvp refused");
    return t[0];
  }
  template <class X>
  static void vjp(const Params&, const X& gy, const X*, const X&, const bool*, X* gx) {
    if (armed) throw std::runtime_error("throwing_identity: vjp refused");
    gx[0] = gy;
  }
};
template <Differentiable X>
X throwing_identity(const X& x) {
  return apply_op<ThrowingIdentity>({}, std::array<X, 1>{x});
}
struct Disarm {
  ~Disarm() { ThrowingIdentity::armed = false; }
};
}  // namespace

TEST_CASE("an exception inside a backward pass leaves the graph usable", "[errors]") {
  Disarm disarm;
  Vd x(Td::from(Shape{2}, {1.0, -2.0}), true);
  const Vd a = x * 3.0;
  // Reverse order visits sum(a) before the throwing node, so `a` holds a pending cotangent
  // when the exception is raised.
  const Vd out = sum(throwing_identity(a)) + sum(a);
  ThrowingIdentity::armed = true;
  CHECK_THROWS_WITH(grad<double>({out}, {x}), Contains("vjp refused"));
  CHECK_THROWS_WITH(out.backward(), Contains("vjp refused"));
  ThrowingIdentity::armed = false;

  // A fresh pass through the same nodes must not see the aborted pass's cotangents.
  const auto g = grad<double>({sum(a)}, {x});
  CHECK(g[0].value().at(0) == 3.0);
  CHECK(g[0].value().at(1) == 3.0);
  const auto g2 = grad<double>({out}, {x});
  CHECK(g2[0].value().at(0) == 6.0);
  CHECK(g2[0].value().at(1) == 6.0);
}

TEST_CASE("an exception inside jvp_graph leaves the graph usable", "[errors]") {
  Disarm disarm;
  Vd x(Td::from(Shape{2}, {1.0, -2.0}), true);
  const Vd h = x * 3.0;
  const Vd out = throwing_identity(h) * 2.0;
  ThrowingIdentity::armed = true;
  CHECK_THROWS_WITH(jvp_graph<double>({out}, {h}, {Td::ones(Shape{2})}), Contains("jvp refused"));
  ThrowingIdentity::armed = false;

  // `h` is not an input of this call: its gradient must not leak into x's.
  const auto g = grad<double>({sum(h * h)}, {x});
  CHECK(g[0].value().at(0) == 18.0);  // d/dx (3x)^2 = 18 x
  CHECK(g[0].value().at(1) == -36.0);
  const auto t = jvp_graph<double>({out}, {x}, {Td::ones(Shape{2})});
  CHECK(t[0].at(0) == 6.0);
  CHECK(t[0].at(1) == 6.0);
}
