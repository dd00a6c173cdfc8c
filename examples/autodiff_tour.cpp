// A short tour of the engine: a gradient, a Jacobian-vector product, a Hessian-vector
// product, and the weight gradient of a Jacobian norm (the GrokAlign penalty) of a small
// ReLU network built from raw ops. Each derivative is checked against central finite
// differences and printed; the program exits non-zero if any check fails.
#include <grokalign/distributed/communicator.hpp>
#include <grokalign/grokalign.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <vector>

namespace ga = grokalign;
using T = double;
using Tensor = ga::Tensor<T>;
using Var = ga::Var<T>;

namespace {

bool all_ok = true;

// Largest entry-wise difference relative to the largest magnitude, so one number says how
// closely two tensors agree.
double relative_error(const Tensor& analytic, const Tensor& numeric) {
  double diff = 0, scale = 1e-12;
  for (ga::index_t i = 0; i < analytic.numel(); ++i) {
    diff = std::max(diff, std::abs(analytic.data()[i] - numeric.data()[i]));
    scale = std::max(scale, std::abs(numeric.data()[i]));
  }
  return diff / scale;
}

void report(const char* what, const Tensor& analytic, const Tensor& numeric, double tol) {
  const double err = relative_error(analytic, numeric);
  const bool ok = err < tol;
  all_ok = all_ok && ok;
  std::printf("  %-58s rel. error %.2e  %s\n", what, err, ok ? "ok" : "FAILED");
}

void print_row(const char* label, const Tensor& t, ga::index_t count = 4) {
  std::printf("  %-10s", label);
  for (ga::index_t i = 0; i < std::min(count, t.numel()); ++i) std::printf(" %+.6f", t.data()[i]);
  std::printf("%s\n", t.numel() > count ? " ..." : "");
}

// Central differences of a scalar function of x, one coordinate at a time.
Tensor numeric_gradient(const std::function<T(const Tensor&)>& f, const Tensor& x, T h = 1e-6) {
  Tensor g = Tensor::zeros(x.shape());
  for (ga::index_t i = 0; i < x.numel(); ++i) {
    Tensor p = x.clone(), m = x.clone();
    p.data()[i] += h;
    m.data()[i] -= h;
    g.data()[i] = (f(p) - f(m)) / (2 * h);
  }
  return g;
}

}  // namespace

int main() {
  // Under mpirun rank 0 alone runs this tour: it has nothing to share out over ranks.
  if (grokalign::distributed::launcher_rank() > 0) return 0;
  ga::Generator gen(2025);

  std::printf("1. Gradient (reverse mode) of f(x) = sum(tanh(x) * x)\n");
  auto f = [](const auto& x) { return ga::sum(ga::tanh(x) * x); };
  const Tensor x = ga::randn<T>({6}, gen);
  Var xv(x, /*requires_grad=*/true);
  Var y = f(xv);
  y.backward();
  const Tensor g_fd = numeric_gradient([&](const Tensor& p) { return f(p).item(); }, x);
  print_row("grad", xv.grad());
  print_row("fin.diff", g_fd);
  report("grad f against finite differences", xv.grad(), g_fd, 1e-7);

  std::printf("\n2. Jacobian-vector product (forward mode) of F(x) = softmax(x) * x\n");
  auto F = [](const auto& x) { return ga::softmax(x[0], -1) * x[0]; };
  const Tensor u = ga::randn<T>({6}, gen);
  const auto jv = ga::jvp<T>(F, {x}, {u});
  const T h = 1e-6;
  Tensor xp = x.clone(), xm = x.clone();
  xp.array() += h * u.array();
  xm.array() -= h * u.array();
  Tensor jv_fd = Tensor::zeros({6});
  jv_fd.array() =
      (F(std::vector<Tensor>{xp}).array() - F(std::vector<Tensor>{xm}).array()) / (2 * h);
  print_row("J u", jv.tangent);
  print_row("fin.diff", jv_fd);
  report("J u against finite differences", jv.tangent, jv_fd, 1e-7);

  std::printf("\n3. Hessian-vector product of f (forward-over-reverse)\n");
  const Tensor hv = ga::hvp<T>(f, x, u);
  const Tensor hv_rr = ga::hvp<T>(f, x, u, ga::HvpMode::kReverseOverReverse);
  const Tensor hv_rf = ga::hvp<T>(f, x, u, ga::HvpMode::kReverseOverForward);
  auto grad_at = [&](const Tensor& p) {
    Var pv(p, true);
    return ga::grad<T>({f(pv)}, {pv})[0].value();
  };
  Tensor hv_fd = Tensor::zeros({6});
  hv_fd.array() = (grad_at(xp).array() - grad_at(xm).array()) / (2 * h);
  print_row("H u", hv);
  print_row("fin.diff", hv_fd);
  report("H u (forward-over-reverse) against finite differences", hv, hv_fd, 1e-6);
  report("H u (reverse-over-reverse) against forward-over-reverse", hv_rr, hv, 1e-10);
  report("H u (reverse-over-forward) against forward-over-reverse", hv_rf, hv, 1e-10);

  std::printf("\n4. Weight gradient of a Jacobian norm (the GrokAlign penalty)\n");
  std::printf("   net(x) = relu(relu(x W1^T) W2^T) W3^T, P = mean_b |J(x_b)^T v_b|\n");
  const ga::index_t B = 4, d = 8, width = 6, C = 3;
  const Tensor X = ga::randn<T>({B, d}, gen);
  const Tensor V = ga::randn<T>({B, C}, gen);
  std::vector<Tensor> W = {ga::randn<T>({width, d}, gen), ga::randn<T>({width, width}, gen),
                           ga::randn<T>({C, width}, gen)};
  auto net = [](const Var& x, const std::vector<Var>& w) {
    return ga::matmul(
        ga::relu(ga::matmul(ga::relu(ga::matmul(x, w[0], false, true)), w[1], false, true)), w[2],
        false, true);
  };
  // The penalty as a differentiable function of the weights: the input gradient J^T v is
  // computed with create_graph, so it can itself be differentiated.
  auto penalty = [&](const std::vector<Var>& w) {
    Var xin(X, true);
    const Var out = net(xin, w);
    const Var jtv = ga::grad<T>({out}, {xin}, {Var(V)}, {.create_graph = true})[0];
    return ga::mean(ga::row_norm(jtv));
  };
  std::vector<Var> Wv;
  for (const auto& w : W) Wv.emplace_back(w, true);
  const Var P = penalty(Wv);
  const auto dP = ga::grad<T>({P}, Wv);
  std::printf("   penalty P = %.6f\n", P.item());
  for (std::size_t l = 0; l < W.size(); ++l) {
    auto P_at = [&](const Tensor& wl) {
      std::vector<Var> ws;
      for (std::size_t k = 0; k < W.size(); ++k) ws.emplace_back(k == l ? wl : W[k], true);
      return penalty(ws).item();
    };
    const Tensor fd = numeric_gradient(P_at, W[l]);
    char label[64];
    std::snprintf(label, sizeof label, "dP/dW%zu (reverse-over-reverse) against finite diff.",
                  l + 1);
    report(label, dP[l].value(), fd, 1e-6);
  }

  std::printf("\n%s\n", all_ok ? "All derivatives agree with finite differences."
                               : "Some derivatives disagree with finite differences.");
  return all_ok ? 0 : 1;
}
