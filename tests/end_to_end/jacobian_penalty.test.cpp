// End to end: weight gradients of Jacobian penalties (double backward through a ReLU MLP,
// reverse-over-forward through Dual<Var>) and a weight-space Hessian-vector product of a
// tanh network, all against central finite differences in the weights.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <grokalign/grokalign.hpp>
#include <vector>

using namespace grokalign;

namespace {

using Td = Tensor<double>;
using Vd = Var<double>;
using Dv = Dual<Vd>;
using Dd = Dual<Td>;

constexpr index_t kD = 6, kH = 5, kC = 3, kB = 4;

// f(x) = relu(relu(x W1^T) W2^T) W3^T, bias-free.
template <class X>
X relu_mlp(const X& x, const X& W1, const X& W2, const X& W3) {
  return linear(relu(linear(relu(linear(x, W1)), W2)), W3);
}

struct ReluSetup {
  Td x, v, u, W1, W2, W3;
};

ReluSetup make_relu_setup() {
  Generator gen(20240607);
  ReluSetup s;
  s.x = randn<double>(Shape{kB, kD}, gen);
  s.v = randn<double>(Shape{kB, kC}, gen);
  s.u = randn<double>(Shape{kB, kD}, gen);
  s.W1 = randn<double>(Shape{kH, kD}, gen, 0.0, 1.0 / std::sqrt(double(kD)));
  s.W2 = randn<double>(Shape{kH, kH}, gen, 0.0, 1.0 / std::sqrt(double(kH)));
  s.W3 = randn<double>(Shape{kC, kH}, gen, 0.0, 1.0 / std::sqrt(double(kH)));
  return s;
}

// Smallest |pre-activation| of the two ReLU layers: finite differences in W are only valid
// when no perturbation can move a pre-activation across zero.
double min_abs_preactivation(const ReluSetup& s) {
  const Td z1 = linear(s.x, s.W1);
  const Td z2 = linear(relu(z1), s.W2);
  double m = INFINITY;
  for (double z : z1) m = std::min(m, std::abs(z));
  for (double z : z2) m = std::min(m, std::abs(z));
  return m;
}

// P(W) = mean_b |J(x_b)^T v_b| evaluated without recording (for finite differences).
double penalty_vjp_value(const ReluSetup& s, const std::vector<Td>& W) {
  Vd x(s.x, true);
  const Vd y = relu_mlp(x, Vd(W[0]), Vd(W[1]), Vd(W[2]));
  const Td u = grad<double>({y}, {x}, {Vd(s.v)})[0].value();
  return mean(row_norm(u)).item();
}

// P(W) = mean_b |J(x_b) u_b| by plain forward mode.
double penalty_jvp_value(const ReluSetup& s, const std::vector<Td>& W) {
  const Dd y = relu_mlp(Dd(s.x, s.u), Dd(W[0]), Dd(W[1]), Dd(W[2]));
  return mean(row_norm(y.tangent())).item();
}

// Central differences of a scalar function of several weight tensors.
template <class F>
std::vector<Td> fd_gradient(F&& P, const std::vector<Td>& W, double h) {
  std::vector<Td> g;
  for (std::size_t k = 0; k < W.size(); ++k) {
    Td gk = Td::empty(W[k].shape());
    for (index_t j = 0; j < W[k].numel(); ++j) {
      std::vector<Td> p = W, m = W;
      p[k] = W[k].clone();
      m[k] = W[k].clone();
      p[k].data()[j] += h;
      m[k].data()[j] -= h;
      gk.data()[j] = (P(p) - P(m)) / (2 * h);
    }
    g.push_back(gk);
  }
  return g;
}

// max |a - n| / max |n| over all entries of all tensors.
double relative_error(const std::vector<Td>& a, const std::vector<Td>& n) {
  REQUIRE(a.size() == n.size());
  double err = 0, scale = 0;
  for (std::size_t k = 0; k < a.size(); ++k) {
    REQUIRE(a[k].defined());
    REQUIRE(a[k].shape() == n[k].shape());
    for (index_t j = 0; j < a[k].numel(); ++j) {
      err = std::max(err, std::abs(a[k].data()[j] - n[k].data()[j]));
      scale = std::max(scale, std::abs(n[k].data()[j]));
    }
  }
  REQUIRE(scale > 0);
  return err / scale;
}

std::vector<Td> values(const std::vector<Vd>& vs) {
  std::vector<Td> r;
  for (const auto& v : vs) r.push_back(v.value());
  return r;
}

// --- a smooth tanh network for the weight-space HVP --------------------------------------
constexpr index_t kTd = 3, kTh = 4, kTc = 2, kTb = 5;
constexpr index_t kN1 = kTh * kTd, kN2 = kTh, kN3 = kTc * kTh, kNtheta = kN1 + kN2 + kN3;

struct TanhNet {
  Td x, target;
  // Loss of the network whose weights are packed in theta = [W1 (h x d), b1 (h), W2 (c x h)].
  template <class X>
  X operator()(const X& theta) const {
    const X W1 = reshape(narrow(theta, 0, 0, kN1), Shape{kTh, kTd});
    const X b1 = narrow(theta, 0, kN1, kN2);
    const X W2 = reshape(narrow(theta, 0, kN1 + kN2, kN3), Shape{kTc, kTh});
    return loss(W1, b1, W2);
  }
  template <class X>
  X loss(const X& W1, const X& b1, const X& W2) const {
    const X xs = constant_like(W1, x);
    const X out = linear(tanh(linear(xs, W1, b1)), W2);
    return mse(out, constant_like(out, target)) + mean(tanh(out) * out);
  }
};

}  // namespace

TEST_CASE("Jacobian penalty mean|J^T v|: weight gradient by double backward matches FD",
          "[autodiff][higher-order][e2e]") {
  const ReluSetup s = make_relu_setup();
  const double margin = min_abs_preactivation(s);
  INFO("smallest |pre-activation| = " << margin);
  REQUIRE(margin > 1e-3);

  Vd W1(s.W1, true), W2(s.W2, true), W3(s.W3, true);
  Vd x(s.x, true);
  const Vd y = relu_mlp(x, W1, W2, W3);
  const Vd u = grad<double>({y}, {x}, {Vd(s.v)}, {.create_graph = true})[0];
  REQUIRE(u.requires_grad());
  REQUIRE(u.shape() == Shape{kB, kD});
  const Td norms = row_norm(u.value());
  for (double n : norms) REQUIRE(n > 1e-3);  // row_norm is smooth away from zero rows
  const Vd P = mean(row_norm(u));
  CHECK(P.item() == Approx(penalty_vjp_value(s, {s.W1, s.W2, s.W3})).epsilon(1e-14));

  const std::vector<Vd> Ws{W1, W2, W3};
  const std::vector<Td> analytic = values(grad<double>({P}, Ws));

  const std::vector<Td> numeric = fd_gradient(
      [&](const std::vector<Td>& W) { return penalty_vjp_value(s, W); }, {s.W1, s.W2, s.W3}, 1e-5);
  const double rel = relative_error(analytic, numeric);
  INFO("relative error " << rel);
  CHECK(rel < 1e-6);

  // backward() on the penalty fills the same gradients into the weights (and x).
  P.backward();
  for (std::size_t k = 0; k < 3; ++k) {
    REQUIRE(Ws[k].grad().defined());
    CHECK(relative_error({Ws[k].grad()}, {analytic[k]}) < 1e-14);
  }
  // For a bias-free ReLU net J^T v is piecewise constant in x (the masks are constants), so
  // x is not part of the penalty's graph and receives no gradient.
  CHECK_FALSE(x.grad().defined());

  // Sanity: every weight matrix gets a nonzero gradient.
  for (const Td& g : analytic) CHECK(g.array().abs().maxCoeff() > 1e-6);
}

TEST_CASE("Weight-space Hessian-vector product of a tanh network matches FD of gradients",
          "[autodiff][higher-order][e2e]") {
  Generator gen(77);
  const TanhNet net{randn<double>(Shape{kTb, kTd}, gen), randn<double>(Shape{kTb, kTc}, gen)};
  const Td theta = randn<double>(Shape{kNtheta}, gen, 0.0, 0.7);
  const Td dir = randn<double>(Shape{kNtheta}, gen);

  auto gradient_at = [&](const Td& th) {
    Vd t(th, true);
    return grad<double>({net(t)}, {t})[0].value();
  };
  const double eps = 1e-5;
  Td tp = theta.clone(), tm = theta.clone();
  tp.array() += eps * dir.array();
  tm.array() -= eps * dir.array();
  Td fd = Td::empty(theta.shape());
  fd.array() = (gradient_at(tp).array() - gradient_at(tm).array()) / (2 * eps);

  for (auto mode :
       {HvpMode::kForwardOverReverse, HvpMode::kReverseOverForward, HvpMode::kReverseOverReverse}) {
    const Td hv = hvp(net, theta, dir, mode);
    const double rel = relative_error({hv}, {fd});
    INFO("mode " << static_cast<int>(mode) << " relative error " << rel);
    CHECK(rel < 1e-6);
  }

  // The same product with the weights as separate leaves: grad with create_graph, then the
  // gradient of <g, dir>.
  Vd W1(reshape(narrow(theta, 0, 0, kN1), Shape{kTh, kTd}).clone(), true);
  Vd b1(narrow(theta, 0, kN1, kN2).clone(), true);
  Vd W2(reshape(narrow(theta, 0, kN1 + kN2, kN3), Shape{kTc, kTh}).clone(), true);
  const Vd L = net.loss(W1, b1, W2);
  const auto g = grad<double>({L}, {W1, b1, W2}, {}, {.create_graph = true});
  const Vd d1(reshape(narrow(dir, 0, 0, kN1), Shape{kTh, kTd}));
  const Vd d2(narrow(dir, 0, kN1, kN2));
  const Vd d3(reshape(narrow(dir, 0, kN1 + kN2, kN3), Shape{kTc, kTh}));
  const Vd gd = sum(g[0] * d1) + sum(g[1] * d2) + sum(g[2] * d3);
  const auto h = grad<double>({gd}, {W1, b1, W2});
  const Td packed = concat(std::vector<Td>{reshape(h[0].value(), Shape{kN1}), h[1].value(),
                                           reshape(h[2].value(), Shape{kN3})},
                           0);
  CHECK(relative_error({packed}, {fd}) < 1e-6);
}

TEST_CASE("Jacobian penalty mean|J u| by reverse-over-forward (Dual<Var>) matches FD",
          "[autodiff][higher-order][e2e]") {
  const ReluSetup s = make_relu_setup();
  REQUIRE(min_abs_preactivation(s) > 1e-3);

  Vd W1(s.W1, true), W2(s.W2, true), W3(s.W3, true);
  const Dv y = relu_mlp(Dv(Vd(s.x), Vd(s.u)), Dv(W1), Dv(W2), Dv(W3));
  REQUIRE(y.tangent().defined());
  REQUIRE(y.tangent().requires_grad());
  REQUIRE(y.tangent().shape() == Shape{kB, kC});
  for (double n : row_norm(y.tangent().value())) REQUIRE(n > 1e-3);
  const Vd P = mean(row_norm(y.tangent()));
  CHECK(P.item() == Approx(penalty_jvp_value(s, {s.W1, s.W2, s.W3})).epsilon(1e-14));

  const std::vector<Td> analytic = values(grad<double>({P}, {W1, W2, W3}));
  const std::vector<Td> numeric = fd_gradient(
      [&](const std::vector<Td>& W) { return penalty_jvp_value(s, W); }, {s.W1, s.W2, s.W3}, 1e-5);
  const double rel = relative_error(analytic, numeric);
  INFO("relative error " << rel);
  CHECK(rel < 1e-6);
  for (const Td& g : analytic) CHECK(g.array().abs().maxCoeff() > 1e-6);

  // Cross-check the tangent itself against J u from the reverse-mode Jacobian.
  const Td J = per_sample_jacobian(
      [&](const auto& xx) {
        return relu_mlp(xx, constant_like(xx, s.W1), constant_like(xx, s.W2),
                        constant_like(xx, s.W3));
      },
      s.x, JacobianMode::kReverse);  // [B, C, d]
  for (index_t b = 0; b < kB; ++b)
    for (index_t c = 0; c < kC; ++c) {
      double ju = 0;
      for (index_t j = 0; j < kD; ++j) ju += J.at(b, c, j) * s.u.at(b, j);
      CHECK(y.tangent().value().at(b, c) == Approx(ju).epsilon(1e-12).margin(1e-14));
    }
}
