// Forward mode: Dual arithmetic, symbolic-zero tangents, jvp_graph over a recorded graph and
// the jvp() transform.
#include <catch2/catch.hpp>
#include <cmath>
#include <grokalign/grokalign.hpp>

#include <vector>
#include "../support/check_close.hpp"

using namespace grokalign;

namespace {

using Td = Tensor<double>;
using Vd = Var<double>;
using Dd = Dual<Td>;

using test_support::check_close;

// <a, b> by a plain loop (Eigen's AVX-512 reductions trip a GCC 12 -Wmaybe-uninitialized
// false positive in this translation unit).
double dot(const Td& a, const Td& b) {
  REQUIRE(a.shape() == b.shape());
  double s = 0;
  for (index_t i = 0; i < a.numel(); ++i) s += a.data()[i] * b.data()[i];
  return s;
}

// Element-wise combination of two tensors of the same shape.
template <class F>
Td zipmap(const Td& a, const Td& b, F f) {
  Td r = Td::empty(a.shape());
  for (index_t i = 0; i < a.numel(); ++i) r.data()[i] = f(a.data()[i], b.data()[i]);
  return r;
}

// A smooth map used in several tests (two inputs, broadcasting, reductions, a matmul).
template <class X>
X model(const X& a, const X& b) {
  const X h = tanh(matmul(a, b)) * exp(a * 0.3);  // a [2,2], b [2,2]
  return sum(h * h, {1}) + sigmoid(sum(b));       // [2]
}

}  // namespace

TEST_CASE("Dual arithmetic propagates tangents", "[autodiff][forward]") {
  const Td x = Td::from(Shape{3}, {0.5, -1.0, 2.0});
  const Td tx = Td::from(Shape{3}, {1.0, 2.0, -0.5});
  const Td y = Td::from(Shape{3}, {1.5, 0.25, -3.0});
  const Td ty = Td::from(Shape{3}, {-2.0, 0.5, 1.0});
  const Dd dx(x, tx), dy(y, ty);

  const Dd s = dx + dy;
  check_close(s.primal(), zipmap(x, y, [](double a, double b) { return a + b; }));
  check_close(s.tangent(), zipmap(tx, ty, [](double a, double b) { return a + b; }));

  const Dd d = dx - dy;
  check_close(d.tangent(), zipmap(tx, ty, [](double a, double b) { return a - b; }));

  const Dd p = dx * dy;  // (x y)' = x' y + x y'
  Td ep = Td::empty(x.shape());
  for (index_t i = 0; i < 3; ++i)
    ep.data()[i] = tx.data()[i] * y.data()[i] + x.data()[i] * ty.data()[i];
  check_close(p.tangent(), ep);

  const Dd q = dx / dy;  // (x/y)' = (x' y - x y') / y^2
  Td eq = Td::empty(x.shape());
  for (index_t i = 0; i < 3; ++i) {
    const double a = x.data()[i], b = y.data()[i];
    eq.data()[i] = (tx.data()[i] * b - a * ty.data()[i]) / (b * b);
  }
  check_close(q.tangent(), eq);

  const Dd n = -dx;
  check_close(n.tangent(), zipmap(tx, tx, [](double a, double) { return -a; }));
  const Dd sc = dx * 3.0 + 1.0;
  check_close(sc.tangent(), zipmap(tx, tx, [](double a, double) { return 3 * a; }));

  const Dd e = exp(dx);
  check_close(e.tangent(), zipmap(x, tx, [](double a, double t) { return std::exp(a) * t; }));
  const Dd th = tanh(dx);
  check_close(th.tangent(), zipmap(x, tx, [](double a, double t) {
                const double c = std::tanh(a);
                return (1 - c * c) * t;
              }));
  const Dd sq = square(dx);
  check_close(sq.tangent(), zipmap(x, tx, [](double a, double t) { return 2 * a * t; }));

  // Reductions and broadcasting.
  const Dd tot = sum(dx);
  CHECK(tot.tangent().item() == Approx(2.5));
  const Dd bc = dx * Dd(Td::scalar(2.0), Td::scalar(1.0));  // broadcast a scalar Dual
  check_close(bc.tangent(), zipmap(x, tx, [](double a, double t) { return 2.0 * t + a * 1.0; }));
}

TEST_CASE("an undefined tangent stays a symbolic zero", "[autodiff][forward]") {
  const Td x = Td::from(Shape{2}, {1.0, 2.0});
  const Dd c(x);  // no tangent
  CHECK_FALSE(c.tangent().defined());
  CHECK_FALSE(exp(c).tangent().defined());
  CHECK_FALSE(sum(tanh(c) * c + 1.0).tangent().defined());
  CHECK_FALSE(matmul(Dd(Td::ones(Shape{2, 2})), Dd(Td::ones(Shape{2, 2}))).tangent().defined());
  CHECK(exp(c).primal().at(1) == Approx(std::exp(2.0)));

  // Mixing with a Dual that has a tangent: only that path contributes.
  const Dd v(x, Td::from(Shape{2}, {1.0, 0.0}));
  const Dd m = c * v;  // tangent = c * t_v
  REQUIRE(m.tangent().defined());
  check_close(m.tangent(), Td::from(Shape{2}, {1.0, 0.0}));

  // The jvp() transform reports a symbolic zero as zeros.
  auto r = jvp<double>([](const std::vector<Dd>& xs) { return exp(xs[0]) + Dd(xs[1].primal()); },
                       {x, x}, {Td::zeros(Shape{2}), Td::zeros(Shape{2})});
  check_close(r.tangent, Td::zeros(Shape{2}));
  auto z =
      jvp<double>([](const std::vector<Dd>& xs) { return Dd(xs[0].primal() + xs[1].primal()); },
                  {x, x}, {x, x});
  REQUIRE(z.tangent.defined());
  check_close(z.tangent, Td::zeros(Shape{2}));
}

TEST_CASE("jvp_graph on a recorded graph equals Dual tangents", "[autodiff][forward]") {
  Generator gen(3);
  const Td a = randn<double>(Shape{2, 2}, gen), b = randn<double>(Shape{2, 2}, gen);
  const Td ta = randn<double>(Shape{2, 2}, gen), tb = randn<double>(Shape{2, 2}, gen);

  Vd va(a, true), vb(b, true);
  const Vd y = model(va, vb);
  const Dd yd = model(Dd(a, ta), Dd(b, tb));
  check_close(y.value(), yd.primal());

  const auto t = jvp_graph<double>({y}, {va, vb}, {ta, tb});
  REQUIRE(t.size() == 1);
  check_close(t[0], yd.tangent());

  // Only one input moving.
  const auto ta_only = jvp_graph<double>({y}, {va}, {ta});
  check_close(ta_only[0], model(Dd(a, ta), Dd(b)).tangent());

  // Several outputs, an intermediate as the moving input, and an output that does not depend
  // on the inputs (zero tangent).
  const Vd h = tanh(va);
  const Vd out1 = sum(h * vb);
  const Vd out2 = vb * 2.0;
  const auto th = jvp_graph<double>({out1, out2}, {h}, {ta});
  check_close(th[0], Td::scalar(dot(ta, b)));
  check_close(th[1], Td::zeros(Shape{2, 2}));

  // Tangents agree with finite differences along the direction.
  const double eps = 1e-6;
  Td ap = a.clone(), am = a.clone(), bp = b.clone(), bm = b.clone();
  ap.array() += eps * ta.array();
  am.array() -= eps * ta.array();
  bp.array() += eps * tb.array();
  bm.array() -= eps * tb.array();
  const Td fp = model(ap, bp), fm = model(am, bm);
  Td fd = Td::empty(fp.shape());
  fd.array() = (fp.array() - fm.array()) / (2 * eps);
  check_close(t[0], fd, 1e-7);

  // The graph is left clean: a second call gives the same result.
  check_close(jvp_graph<double>({y}, {va, vb}, {ta, tb})[0], t[0]);
}

TEST_CASE("jvp() transform", "[autodiff][forward]") {
  Generator gen(4);
  const Td a = randn<double>(Shape{2, 2}, gen), b = randn<double>(Shape{2, 2}, gen);
  const Td ta = randn<double>(Shape{2, 2}, gen), tb = randn<double>(Shape{2, 2}, gen);
  auto f = [](const auto& xs) { return model(xs[0], xs[1]); };
  const JvpResult<double> r = jvp<double>(f, {a, b}, {ta, tb});
  check_close(r.value, model(a, b));

  // Against the reverse-mode Jacobian applied to the tangent: J u = sum_i J_i u_i, and
  // <v, J u> = <J^T v, u> for every v.
  const Td v = randn<double>(Shape{2}, gen);
  const VjpResult<double> back = vjp<double>(f, {a, b}, v);
  const double lhs = dot(v, r.tangent);
  const double rhs = dot(back.cotangents[0], ta) + dot(back.cotangents[1], tb);
  CHECK(lhs == Approx(rhs).epsilon(1e-12));

  // Linearity in the tangent.
  Td ta2 = ta.clone(), tb2 = tb.clone();
  ta2.array() *= 3.0;
  tb2.array() *= 3.0;
  const auto r3 = jvp<double>(f, {a, b}, {ta2, tb2});
  Td expect = r.tangent.clone();
  expect.array() *= 3.0;
  check_close(r3.tangent, expect);

  CHECK_THROWS_AS(jvp<double>(f, {a, b}, {ta}), AutodiffError);
  CHECK_THROWS_AS(jvp<double>(f, {a, b}, {ta, Td::zeros(Shape{4})}), ShapeError);

  // float works too.
  auto g = [](const auto& xs) { return exp(xs[0]) * xs[0]; };
  const auto rf = jvp<float>(g, {Tensor<float>::from(Shape{1}, {1.0f})},
                             {Tensor<float>::from(Shape{1}, {1.0f})});
  CHECK(rf.tangent.item() == Approx(2.0 * std::exp(1.0)).epsilon(1e-6));
}
