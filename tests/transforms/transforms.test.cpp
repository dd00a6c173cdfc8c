// Function transforms: jacobian (reverse / forward / finite differences), per-sample
// jacobians of a batched MLP, Hessian-vector products in the three modes, and vjp().
#include <catch2/catch.hpp>
#include <cmath>
#include <grokalign/grokalign.hpp>
#include <vector>

using namespace grokalign;

namespace {

using Td = Tensor<double>;
using Vd = Var<double>;

// max |a - b| <= atol + rtol * max |b|
void check_close(const Td& a, const Td& b, double rtol, double atol = 1e-12) {
  REQUIRE(a.defined());
  REQUIRE(b.defined());
  REQUIRE(a.shape() == b.shape());
  double err = 0, scale = 0;
  index_t worst = 0;
  for (index_t i = 0; i < a.numel(); ++i) {
    const double e = std::abs(a.data()[i] - b.data()[i]);
    if (e > err) {
      err = e;
      worst = i;
    }
    scale = std::max(scale, std::abs(b.data()[i]));
  }
  INFO("max abs error " << err << " at " << worst << " (" << a.data()[worst] << " vs "
                        << b.data()[worst] << "), scale " << scale);
  CHECK(err <= atol + rtol * scale);
}

// <a, b> by a plain loop (Eigen's AVX-512 reductions trip a GCC 12 -Wmaybe-uninitialized
// false positive in this translation unit).
double dot(const Td& a, const Td& b) {
  REQUIRE(a.shape() == b.shape());
  double s = 0;
  for (index_t i = 0; i < a.numel(); ++i) s += a.data()[i] * b.data()[i];
  return s;
}

// A small nonlinear map [2, 3] -> [2, 2] with coupling across rows (through sum(x * x)).
struct SmallMap {
  Td A, B;
  template <class X>
  X operator()(const X& x) const {
    const X a = constant_like(x, A), b = constant_like(x, B);
    return tanh(matmul(x, a)) * sum(x * x) + exp(matmul(x, b) * 0.5);
  }
};

// Jacobian [out..., in...] by central differences.
template <class F>
Td fd_jacobian(const F& f, const Td& x, double h = 1e-6) {
  const Td y = f(x);
  Shape js = y.shape();
  for (index_t d : x.shape()) js.push_back(d);
  Td jac = Td::zeros(js);
  const index_t m = y.numel(), n = x.numel();
  for (index_t j = 0; j < n; ++j) {
    Td p = x.clone(), q = x.clone();
    p.data()[j] += h;
    q.data()[j] -= h;
    const Td fp = f(p), fq = f(q);
    for (index_t i = 0; i < m; ++i) jac.data()[i * n + j] = (fp.data()[i] - fq.data()[i]) / (2 * h);
  }
  return jac;
}

// Two-layer tanh MLP, batched: x [B, d] -> [B, C].
struct Mlp {
  Td W1, b1, W2;
  template <class X>
  X operator()(const X& x) const {
    const X h = tanh(linear(x, constant_like(x, W1), constant_like(x, b1)));
    return linear(h, constant_like(x, W2));
  }
};

// A smooth scalar function of a [2, 3] tensor.
struct Smooth {
  Td A;
  template <class X>
  X operator()(const X& x) const {
    const X a = constant_like(x, A);
    return sum(tanh(matmul(x, a)) * sigmoid(x * 0.7 - 0.2) * 2.0) + sum(exp(x * x * 0.1)) +
           log(sum(square(x)) + 1.0);
  }
};

template <class F>
Td gradient_of(const F& f, const Td& x) {
  Vd xv(x, true);
  return grad<double>({f(xv)}, {xv})[0].value();
}

}  // namespace

TEST_CASE("jacobian: reverse == forward == finite differences", "[autodiff][higher-order]") {
  Generator gen(21);
  const SmallMap f{randn<double>(Shape{3, 2}, gen), randn<double>(Shape{3, 2}, gen)};
  const Td x = randn<double>(Shape{2, 3}, gen, 0.0, 0.5);

  const Td jr = jacobian(f, x, JacobianMode::kReverse);
  const Td jf = jacobian(f, x, JacobianMode::kForward);
  const Td ja = jacobian(f, x);
  const Td jn = fd_jacobian(f, x);
  REQUIRE(jr.shape() == Shape{2, 2, 2, 3});
  check_close(jr, jf, 1e-13);
  check_close(ja, jr, 0.0, 0.0);
  check_close(jr, jn, 1e-8);

  // A map [4] -> [2]: kAuto picks reverse; a map [2] -> [4]: forward. Both match FD.
  auto narrow_map = [](const auto& v) { return exp(narrow(v, 0, 1, 2)) * sum(v); };
  const Td v4 = randn<double>(Shape{4}, gen);
  check_close(jacobian(narrow_map, v4), fd_jacobian(narrow_map, v4), 1e-8);
  check_close(jacobian(narrow_map, v4, JacobianMode::kForward), jacobian(narrow_map, v4), 1e-13);
  auto wide_map = [](const auto& v) { return concat(std::vector{tanh(v), v * v}, 0); };
  const Td v2 = randn<double>(Shape{2}, gen);
  const Td jw = jacobian(wide_map, v2);
  REQUIRE(jw.shape() == Shape{4, 2});
  check_close(jw, fd_jacobian(wide_map, v2), 1e-8);
  check_close(jw, jacobian(wide_map, v2, JacobianMode::kReverse), 1e-13);
}

TEST_CASE("per_sample_jacobian of a batched 2-layer tanh MLP", "[autodiff][higher-order]") {
  Generator gen(22);
  constexpr index_t B = 3, d = 4, hdim = 5, C = 2;
  const Mlp f{randn<double>(Shape{hdim, d}, gen), randn<double>(Shape{hdim}, gen),
              randn<double>(Shape{C, hdim}, gen)};
  const Td x = randn<double>(Shape{B, d}, gen);

  const Td jr = per_sample_jacobian(f, x, JacobianMode::kReverse);
  const Td jf = per_sample_jacobian(f, x, JacobianMode::kForward);
  REQUIRE(jr.shape() == Shape{B, C, d});
  REQUIRE(jf.shape() == Shape{B, C, d});
  check_close(jr, jf, 1e-13);
  check_close(per_sample_jacobian(f, x), jr, 0.0, 0.0);

  // Each sample against the full Jacobian of the model on that sample alone.
  for (index_t b = 0; b < B; ++b) {
    const Td xb = x.rows(b, 1).clone();                       // [1, d]
    const Td full = jacobian(f, xb, JacobianMode::kReverse);  // [1, C, 1, d]
    REQUIRE(full.shape() == Shape{1, C, 1, d});
    const Td mine = jr.rows(b, 1).reshape(Shape{1, C, 1, d});
    check_close(mine, full, 1e-13);
    check_close(jf.rows(b, 1).reshape(Shape{1, C, 1, d}), full, 1e-13);
    check_close(full, fd_jacobian(f, xb), 1e-8);
  }

  // The full batched Jacobian is block diagonal with these blocks.
  const Td jall = jacobian(f, x);  // [B, C, B, d]
  for (index_t b = 0; b < B; ++b)
    for (index_t c = 0; c < C; ++c)
      for (index_t b2 = 0; b2 < B; ++b2)
        for (index_t j = 0; j < d; ++j)
          CHECK(jall.at(b, c, b2, j) == Approx(b == b2 ? jr.at(b, c, j) : 0.0).margin(1e-14));
}

TEST_CASE("hvp: three modes agree with each other and with finite differences",
          "[autodiff][higher-order]") {
  Generator gen(23);
  const Smooth f{randn<double>(Shape{3, 3}, gen)};
  const Td x = randn<double>(Shape{2, 3}, gen, 0.0, 0.7);
  const Td u = randn<double>(Shape{2, 3}, gen);

  const Td h1 = hvp(f, x, u, HvpMode::kForwardOverReverse);
  const Td h2 = hvp(f, x, u, HvpMode::kReverseOverForward);
  const Td h3 = hvp(f, x, u, HvpMode::kReverseOverReverse);
  const Td hd = hvp(f, x, u);  // default mode

  // Central differences of the gradient along u.
  const double eps = 1e-5;
  Td xp = x.clone(), xm = x.clone();
  xp.array() += eps * u.array();
  xm.array() -= eps * u.array();
  Td fd = Td::empty(x.shape());
  fd.array() = (gradient_of(f, xp).array() - gradient_of(f, xm).array()) / (2 * eps);

  check_close(h1, h2, 1e-12);
  check_close(h1, h3, 1e-12);
  check_close(hd, h1, 0.0, 0.0);
  check_close(h1, fd, 1e-8);

  // The Hessian is symmetric: <w, H u> = <u, H w>.
  const Td w = randn<double>(Shape{2, 3}, gen);
  const Td hw = hvp(f, x, w, HvpMode::kReverseOverReverse);
  CHECK(dot(w, h1) == Approx(dot(u, hw)).epsilon(1e-12));

  // A function with a zero Hessian (linear) gives zeros in every mode.
  auto lin = [](const auto& v) { return sum(v * 3.0); };
  for (auto mode :
       {HvpMode::kForwardOverReverse, HvpMode::kReverseOverForward, HvpMode::kReverseOverReverse}) {
    const Td z = hvp(lin, x, u, mode);
    REQUIRE(z.shape() == x.shape());
    for (double e : z) CHECK(e == 0.0);
  }

  CHECK_THROWS_AS(hvp(f, x, Td::zeros(Shape{3, 2})), ShapeError);
  auto vec_valued = [](const auto& v) { return v * v; };
  for (auto mode :
       {HvpMode::kForwardOverReverse, HvpMode::kReverseOverForward, HvpMode::kReverseOverReverse})
    CHECK_THROWS_AS(hvp(vec_valued, x, u, mode), ShapeError);
}

TEST_CASE("vjp() transform", "[autodiff][higher-order]") {
  Generator gen(24);
  const Td a = randn<double>(Shape{2, 3}, gen), b = randn<double>(Shape{3, 2}, gen);
  auto f = [](const std::vector<Vd>& xs) { return tanh(matmul(xs[0], xs[1])); };
  const Td v = randn<double>(Shape{2, 2}, gen);
  const VjpResult<double> r = vjp<double>(f, {a, b}, v);
  REQUIRE(r.cotangents.size() == 2);

  Td expected_value = Td::empty(Shape{2, 2});
  expected_value.matrix() = (a.matrix() * b.matrix()).array().tanh().matrix();
  check_close(r.value, expected_value, 1e-14);

  // J^T v by hand: G = v * (1 - tanh^2); dA = G B^T, dB = A^T G.
  Eigen::MatrixXd G =
      (v.matrix().array() * (1.0 - expected_value.matrix().array().square())).matrix();
  Td ga = Td::empty(Shape{2, 3}), gb = Td::empty(Shape{3, 2});
  ga.matrix() = G * b.matrix().transpose();
  gb.matrix() = a.matrix().transpose() * G;
  check_close(r.cotangents[0], ga, 1e-13);
  check_close(r.cotangents[1], gb, 1e-13);

  // An unused primal gets a zero cotangent.
  auto g = [](const std::vector<Vd>& xs) { return exp(xs[0]); };
  const auto rg = vjp<double>(g, {a, b}, Td::ones(Shape{2, 3}));
  REQUIRE(rg.cotangents[1].shape() == Shape{3, 2});
  for (double e : rg.cotangents[1]) CHECK(e == 0.0);
  Td ea = Td::empty(Shape{2, 3});
  ea.array() = a.array().exp();
  check_close(rg.cotangents[0], ea, 1e-14);
}

TEST_CASE("transforms of a function that does not depend on its input give zeros",
          "[autodiff][higher-order]") {
  // The Jacobian of a constant map is zero whichever mode computes it (forward mode already
  // returns zeros; reverse mode must not refuse the output for not requiring grad).
  const Td x = Td::from(Shape{2}, {1.0, 2.0});
  const Td c = Td::from(Shape{3}, {5.0, 6.0, 7.0});
  auto constant = [&](const auto& v) { return constant_like(v, c); };
  SECTION("jacobian") {
    for (auto mode : {JacobianMode::kForward, JacobianMode::kReverse, JacobianMode::kAuto}) {
      INFO("mode " << static_cast<int>(mode));
      Td J;
      REQUIRE_NOTHROW(J = jacobian(constant, x, mode));
      REQUIRE(J.shape() == Shape{3, 2});
      for (double e : J) CHECK(e == 0.0);
    }
  }
  SECTION("per_sample_jacobian") {
    const Td xb = Td::from(Shape{2, 2}, {1.0, 2.0, 3.0, 4.0});
    const Td cb = Td::from(Shape{2, 1}, {5.0, 6.0});
    auto constant_batched = [&](const auto& v) { return constant_like(v, cb); };
    for (auto mode : {JacobianMode::kForward, JacobianMode::kReverse}) {
      INFO("mode " << static_cast<int>(mode));
      Td J;
      REQUIRE_NOTHROW(J = per_sample_jacobian(constant_batched, xb, mode));
      REQUIRE(J.shape() == Shape{2, 1, 2});
      for (double e : J) CHECK(e == 0.0);
    }
  }
  SECTION("vjp") {
    VjpResult<double> r;
    REQUIRE_NOTHROW(
        r = vjp<double>([&](const std::vector<Vd>& v) { return constant_like(v[0], c); }, {x},
                        Td::ones(Shape{3})));
    check_close(r.value, c, 0.0, 0.0);
    REQUIRE(r.cotangents.size() == 1);
    check_close(r.cotangents[0], Td::zeros(Shape{2}), 0.0, 0.0);
  }
}
