// The alignment tools against their definitions (SPEC.md section 1): exact values on linear
// models, the statistics of the random-projection estimator, weight gradients of the
// penalty against finite differences, PC1 on constructed Jacobians, NTK against explicit
// parameter-gradient dot products, and centroids against finite-difference Jacobians.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <grokalign/align.hpp>
#include <grokalign/grokalign.hpp>
#include <grokalign/nn.hpp>
#include <grokalign/ops/conv.hpp>

#include "tiny_transformer.hpp"

namespace ga = grokalign;
using T = double;
using Tensor = ga::Tensor<T>;
using Var = ga::Var<T>;

namespace {

// f(x) = x W^T for a constant W: J = W for every sample.
auto linear_model(const Tensor& W) {
  return [W](const auto& x) { return ga::matmul(x, ga::constant_like(x, W), false, true); };
}

// Central differences of a scalar function over every entry of t (t is perturbed in place
// and restored).
Tensor numeric_gradient(Tensor t, const std::function<T()>& f, T h = 1e-6) {
  Tensor g = Tensor::zeros(t.shape());
  for (ga::index_t i = 0; i < t.numel(); ++i) {
    const T keep = t.data()[i];
    t.data()[i] = keep + h;
    const T fp = f();
    t.data()[i] = keep - h;
    const T fm = f();
    t.data()[i] = keep;
    g.data()[i] = (fp - fm) / (2 * h);
  }
  return g;
}

void require_close(const Tensor& a, const Tensor& b, double rtol) {
  REQUIRE(a.shape() == b.shape());
  double diff = 0, scale = 0;
  for (ga::index_t i = 0; i < a.numel(); ++i) {
    diff = std::max(diff, std::abs(a.data()[i] - b.data()[i]));
    scale = std::max(scale, std::abs(b.data()[i]));
  }
  INFO("max abs diff " << diff << " scale " << scale);
  CHECK(scale > 0);
  CHECK(diff <= rtol * scale);
}

// Checks d penalty / d params against finite differences, with the projections redrawn
// from the same seed at every evaluation.
template <class Model>
void check_penalty_gradient(Model&& model, const Tensor& x, std::vector<Var>& params,
                            const ga::align::PenaltyOptions& opt, double rtol = 1e-6) {
  auto penalty = [&] {
    ga::Generator gen(99);
    return ga::align::grokalign_penalty<T>(model, x, gen, opt);
  };
  // Biases only move ReLU kinks, so J (and the penalty) may not depend on them at all:
  // such parameters get no gradient and their finite differences must vanish.
  const auto g = ga::grad<T>({penalty()}, params, {}, {.allow_unused = true});
  for (std::size_t p = 0; p < params.size(); ++p) {
    INFO("parameter " << p);
    const Tensor fd = numeric_gradient(params[p].value(), [&] { return penalty().item(); });
    if (g[p].defined()) {
      require_close(g[p].value(), fd, rtol);
    } else {
      for (ga::index_t i = 0; i < fd.numel(); ++i) CHECK(std::abs(fd.data()[i]) < 1e-7);
    }
  }
}

}  // namespace

TEST_CASE("linear model: centroid is W^T 1 and the exact penalty is |W|_F", "[align]") {
  ga::Generator gen(1);
  const Tensor W = ga::randn<T>({4, 6}, gen), x = ga::randn<T>({5, 6}, gen);
  const auto model = linear_model(W);
  const auto c = ga::align::centroids<T>(model, x);
  const Eigen::VectorXd expected = W.matrix().colwise().sum().transpose();
  for (ga::index_t b = 0; b < 5; ++b) {
    for (int j = 0; j < 6; ++j) CHECK(c.centroid.at(b, j) == Approx(expected(j)).epsilon(1e-12));
    CHECK(c.norm.data()[b] == Approx(expected.norm()).epsilon(1e-12));
    CHECK(c.inner.data()[b] == Approx(x.matrix().row(b).dot(expected)).epsilon(1e-12));
  }
  ga::align::PenaltyOptions exact{.estimator = ga::align::Estimator::kExact};
  CHECK(ga::align::grokalign_penalty<T>(model, x, gen, exact).item() ==
        Approx(W.matrix().norm()).epsilon(1e-12));
  exact.form = ga::align::PenaltyForm::kHalfSquaredNorm;
  CHECK(ga::align::grokalign_penalty<T>(model, x, gen, exact).item() ==
        Approx(0.5 * W.matrix().squaredNorm()).epsilon(1e-12));
}

TEST_CASE("centroid alignment is exactly 1 when W^T 1 is parallel to x", "[align]") {
  // W's columns sum to (1, 2, 3); x = 2 * (1, 2, 3) gives cosine 1, -x gives -1.
  const Tensor W = Tensor::from({2, 3}, {0.5, 1.5, 1.0, 0.5, 0.5, 2.0});
  const Tensor x = Tensor::from({2, 3}, {2, 4, 6, -1, -2, -3});
  const auto c = ga::align::centroids<T>(linear_model(W), x);
  CHECK(c.alignment.data()[0] == Approx(1.0).epsilon(1e-14));
  CHECK(c.alignment.data()[1] == Approx(-1.0).epsilon(1e-14));
  // A zero input uses the 1e-8 floor instead of dividing by zero.
  const auto z = ga::align::centroids<T>(linear_model(W), Tensor::zeros({1, 3}));
  CHECK(z.alignment.data()[0] == 0.0);
}

TEST_CASE("random-projection estimate of |J|_F^2 is unbiased within its derived error", "[align]") {
  ga::Generator gen(2);
  const int C = 4, d = 5, B = 3, draws = 4000;
  const Tensor W = ga::randn<T>({C, d}, gen), x = ga::randn<T>({B, d}, gen);
  const auto model = linear_model(W);
  // Half-squared form: 0.5 * mean_b C |J^T v_b|^2 with v_b uniform on the unit sphere.
  const ga::align::PenaltyOptions opt{.form = ga::align::PenaltyForm::kHalfSquaredNorm};
  double sum = 0;
  for (int i = 0; i < draws; ++i) sum += ga::align::grokalign_penalty<T>(model, x, gen, opt).item();
  const double estimate = sum / draws;
  const Eigen::MatrixXd A = W.matrix() * W.matrix().transpose();  // J J^T
  const double trA = A.trace(), trA2 = (A * A).trace();
  // For v uniform on the sphere in R^C: E q = tr A / C and
  // E q^2 = (tr(A)^2 + 2 tr(A^2)) / (C (C + 2)), with q = v^T A v = |J^T v|^2.
  const double var_q = (trA * trA + 2 * trA2) / (C * (C + 2.0)) - trA * trA / (C * C);
  const double var_S = C * C * var_q;
  const double std_error = std::sqrt(0.25 * var_S / B / draws);
  INFO("estimate " << estimate << " exact " << 0.5 * trA << " standard error " << std_error);
  CHECK(std::abs(estimate - 0.5 * trA) < 5 * std_error);
  // The bound is not vacuous: it is a small fraction of the value.
  CHECK(5 * std_error < 0.1 * 0.5 * trA);
}

TEST_CASE("with one output the projection is +-1 and every estimate is exact", "[align]") {
  ga::Generator gen(3);
  const Tensor W = ga::randn<T>({1, 7}, gen), x = ga::randn<T>({4, 7}, gen);
  for (int i = 0; i < 20; ++i)
    CHECK(ga::align::grokalign_penalty<T>(linear_model(W), x, gen).item() ==
          Approx(W.matrix().norm()).epsilon(1e-12));
}

TEST_CASE("exact mode equals the Frobenius norm of per-sample full Jacobians", "[align]") {
  ga::Generator gen(4);
  const Tensor W1 = ga::randn<T>({6, 5}, gen), W2 = ga::randn<T>({3, 6}, gen);
  const Tensor x = ga::randn<T>({4, 5}, gen);
  auto model = [&](const auto& in) {
    return ga::matmul(ga::tanh(ga::matmul(in, ga::constant_like(in, W1), false, true)),
                      ga::constant_like(in, W2), false, true);
  };
  const Tensor jac = ga::per_sample_jacobian<T>(model, x);  // [4, 3, 5]
  double expected = 0;
  for (int b = 0; b < 4; ++b)
    expected += Eigen::Map<const Eigen::VectorXd>(jac.data() + b * 15, 15).norm() / 4;
  const ga::align::PenaltyOptions exact{.estimator = ga::align::Estimator::kExact};
  CHECK(ga::align::grokalign_penalty<T>(model, x, gen, exact).item() ==
        Approx(expected).epsilon(1e-12));
}

TEST_CASE("input-projection estimator is unbiased and exact for one input", "[align]") {
  ga::Generator gen(5);
  const Tensor W = ga::randn<T>({3, 1}, gen), x = ga::randn<T>({2, 1}, gen);
  const ga::align::PenaltyOptions fwd{.estimator = ga::align::Estimator::kInputProjections};
  CHECK(ga::align::grokalign_penalty<T>(linear_model(W), x, gen, fwd).item() ==
        Approx(W.matrix().norm()).epsilon(1e-12));
  const Tensor W2 = ga::randn<T>({2, 3}, gen), x2 = ga::randn<T>({2, 3}, gen);
  ga::align::PenaltyOptions half = fwd;
  half.form = ga::align::PenaltyForm::kHalfSquaredNorm;
  half.projections = 3;
  double sum = 0;
  const int draws = 3000;
  for (int i = 0; i < draws; ++i)
    sum += ga::align::grokalign_penalty<T>(linear_model(W2), x2, gen, half).item();
  // Loose statistical bound (about 6 standard errors for this J).
  CHECK(sum / draws == Approx(0.5 * W2.matrix().squaredNorm()).epsilon(0.05));
}

TEST_CASE("constrained penalty is |level - penalty|", "[align]") {
  ga::Generator gen(6);
  const Tensor W = ga::randn<T>({1, 4}, gen), x = ga::randn<T>({3, 4}, gen);
  const double norm = W.matrix().norm();
  ga::align::PenaltyOptions opt{.constrained = true, .level = norm + 2.0};
  CHECK(ga::align::grokalign_penalty<T>(linear_model(W), x, gen, opt).item() ==
        Approx(2.0).epsilon(1e-12));
}

TEST_CASE("penalty weight gradient matches finite differences: ReLU MLP", "[align][higher-order]") {
  ga::Generator gen(7);
  const Tensor x = ga::randn<T>({4, 6}, gen);
  std::vector<Var> W = {Var(ga::randn<T>({5, 6}, gen), true), Var(ga::randn<T>({5, 5}, gen), true),
                        Var(ga::randn<T>({3, 5}, gen), true)};
  auto model = [&](const auto& in) {
    using X = std::decay_t<decltype(in)>;
    auto w = [&](int i) { return X(W[i]); };
    return ga::matmul(
        ga::relu(ga::matmul(ga::relu(ga::matmul(in, w(0), false, true)), w(1), false, true)), w(2),
        false, true);
  };
  check_penalty_gradient(model, x, W, {});
  check_penalty_gradient(model, x, W, {.projections = 3});
  check_penalty_gradient(model, x, W, {.estimator = ga::align::Estimator::kExact});
  check_penalty_gradient(model, x, W,
                         {.estimator = ga::align::Estimator::kInputProjections, .projections = 2});
}

namespace {

// Whether a node named `name` is in the graph that produced v.
bool graph_has(const Var& v, const char* name) {
  std::vector<ga::detail::Node<T>*> order;
  ga::detail::topological_order<T>({v.node()}, ga::detail::next_traversal_mark(), order);
  for (auto* n : order)
    if (std::string(n->name()) == name) return true;
  return false;
}

}  // namespace

TEST_CASE("the Gram form of the first product gives the direct penalty and gradients",
          "[align][higher-order]") {
  using ga::align::FirstProduct;
  ga::Generator gen(11);
  const Tensor x = ga::randn<T>({24, 9}, gen);
  std::vector<Var> W = {Var(ga::randn<T>({4, 9}, gen), true), Var(ga::randn<T>({3, 4}, gen), true)};
  // A first Linear layer (x W^T) and, second model, a product x W with W [d, n].
  const Var w_cols(ga::randn<T>({9, 4}, gen), true);
  auto linear_first = [&](const auto& in) {
    using X = std::decay_t<decltype(in)>;
    return ga::matmul(ga::relu(ga::matmul(in, X(W[0]), false, true)), X(W[1]), false, true);
  };
  auto product_first = [&](const auto& in) {
    using X = std::decay_t<decltype(in)>;
    return ga::matmul(ga::relu(ga::matmul(in, X(w_cols))), X(W[1]), false, true);
  };
  std::vector<Var> params_cols = {w_cols, W[1]};
  const int k = GENERATE(1, 3);
  INFO("projections " << k);
  for (int model_kind = 0; model_kind < 2; ++model_kind) {
    INFO("model " << model_kind);
    auto& params = model_kind == 0 ? W : params_cols;
    auto run = [&](FirstProduct how) {
      ga::Generator g(5);
      const Var xv(x, true);
      const Var out = model_kind == 0 ? linear_first(xv) : product_first(xv);
      return ga::align::grokalign_penalty_from(out, xv, g,
                                               {.projections = k, .first_product = how});
    };
    const Var direct = run(FirstProduct::kDirect), via_gram = run(FirstProduct::kGram);
    CHECK_FALSE(graph_has(direct, "gram"));
    CHECK(graph_has(via_gram, "gram"));
    CHECK(via_gram.item() == Approx(direct.item()).epsilon(1e-12));
    const auto gd = ga::grad<T>({direct}, params), gg = ga::grad<T>({via_gram}, params);
    for (std::size_t p = 0; p < params.size(); ++p)
      require_close(gg[p].value(), gd[p].value(), 1e-11);
    // B n d = 24 * 4 * 9 against n^2 d and B n^2: the Gram form is the cheaper one here.
    CHECK(graph_has(run(FirstProduct::kAuto), "gram"));
  }
  // Against finite differences, for the exact estimator too.
  check_penalty_gradient(linear_first, x, W,
                         {.projections = k, .first_product = FirstProduct::kGram});
  check_penalty_gradient(
      linear_first, x, W,
      {.estimator = ga::align::Estimator::kExact, .first_product = FirstProduct::kGram});
}

TEST_CASE("the Gram form is used only where it is cheaper and x enters through one product",
          "[align]") {
  ga::Generator gen(12);
  const Var w1(ga::randn<T>({4, 40}, gen), true), w2(ga::randn<T>({2, 4}, gen), true);
  auto uses_gram = [&](ga::index_t batch, bool x_twice) {
    ga::Generator g(3);
    const Var xv(ga::randn<T>({batch, 40}, g), true);
    Var h = ga::relu(ga::matmul(xv, w1, false, true));
    Var out = ga::matmul(h, w2, false, true);
    if (x_twice) out = out + ga::sum(xv * xv, {1}, /*keepdim=*/true);  // a second use of x
    return graph_has(ga::align::grokalign_penalty_from(out, xv, g), "gram");
  };
  // n = 4, d = 40: direct 6 B n d = 960 B FLOPs, Gram 4 n^2 d + 6 B n^2 = 2560 + 96 B.
  CHECK(uses_gram(64, false));
  CHECK_FALSE(uses_gram(2, false));
  CHECK_FALSE(uses_gram(64, true));
}

TEST_CASE("penalty weight gradient matches finite differences: CNN", "[align][higher-order]") {
  ga::Generator gen(8);
  const Tensor x = ga::randn<T>({2, 1, 6, 6}, gen);
  std::vector<Var> W = {Var(ga::randn<T>({2, 1, 3, 3}, gen), true),
                        Var(ga::randn<T>({3, 2 * 3 * 3}, gen) * 0.3, true)};
  auto model = [&](const auto& in) {
    using X = std::decay_t<decltype(in)>;
    const X h = ga::tanh(ga::conv2d(in, X(W[0]), ga::Conv2dOptions{2, 1}));  // [2, 2, 3, 3]
    return ga::matmul(ga::flatten(h), X(W[1]), false, true);
  };
  check_penalty_gradient(model, x, W, {});
  check_penalty_gradient(model, x, W, {.estimator = ga::align::Estimator::kInputProjections});
}

using grokalign_test::TinyTransformer;

TEST_CASE("penalty weight gradient matches finite differences: transformer sub-map",
          "[align][higher-order]") {
  TinyTransformer t;
  std::vector<Var> used = t.sub_map_parameters();
  check_penalty_gradient(t.sub_map(), t.embedded, used, {}, 1e-5);
  check_penalty_gradient(t.sub_map(), t.embedded, used,
                         {.estimator = ga::align::Estimator::kInputProjections}, 1e-5);
}

TEST_CASE("centroids of the transformer sub-map match finite-difference Jacobians", "[align]") {
  TinyTransformer t;
  const auto c = ga::align::centroids<T>(t.sub_map(), t.embedded);
  Tensor e = t.embedded.clone();
  const Tensor fd = numeric_gradient(e, [&] { return ga::sum(t.model.from_embedding(e)).item(); });
  require_close(c.centroid, fd, 1e-7);
  CHECK(c.alignment.numel() == 2);
}

TEST_CASE("centroids of a CNN match finite-difference Jacobians", "[align]") {
  ga::Generator gen(9);
  const Tensor x = ga::randn<T>({2, 2, 5, 5}, gen);
  const Tensor K = ga::randn<T>({3, 2, 3, 3}, gen), V = ga::randn<T>({4, 3 * 3 * 3}, gen);
  auto model = [&](const auto& in) {
    const auto h = ga::gelu(ga::conv2d(in, ga::constant_like(in, K), ga::Conv2dOptions{2, 1}));
    return ga::matmul(ga::flatten(h), ga::constant_like(in, V), false, true);
  };
  const auto c = ga::align::centroids<T>(model, x);
  Tensor xs = x.clone();
  const Tensor fd = numeric_gradient(xs, [&] { return ga::sum(model(xs)).item(); });
  require_close(c.centroid, fd, 1e-7);
}

TEST_CASE("local centroid of a linear model is its centroid", "[align]") {
  ga::Generator gen(10);
  const Tensor W = ga::randn<T>({3, 4}, gen), x = ga::randn<T>({2, 4}, gen);
  const auto local =
      ga::align::local_centroids<T>(linear_model(W), x, gen, {.samples = 5, .noise = 0.5});
  const auto exact = ga::align::centroids<T>(linear_model(W), x);
  require_close(local.centroid, exact.centroid, 1e-12);
  require_close(local.alignment, exact.alignment, 1e-12);
}

TEST_CASE("PC1 is 1 for a rank-one Jacobian and 1/r for r equal directions", "[align]") {
  ga::Generator gen(11);
  // Rank one: J = a b^T.
  const Tensor a = ga::randn<T>({3, 1}, gen), b = ga::randn<T>({1, 5}, gen);
  const Tensor J1 = Tensor::from_matrix(a.matrix() * b.matrix());
  CHECK(ga::align::pc1<T>(linear_model(J1), ga::randn<T>({2, 5}, gen)).mean ==
        Approx(1.0).epsilon(1e-12));
  // r equal singular values along orthogonal directions: J = 2 * [I_r 0].
  for (int r : {2, 3, 4}) {
    Tensor J = Tensor::zeros({4, 6});
    for (int i = 0; i < r; ++i) J.at(i, i) = 2.0;
    const auto s = ga::align::pc1<T>(linear_model(J), ga::randn<T>({3, 6}, gen), 2);
    CHECK(s.mean == Approx(1.0 / r).epsilon(1e-12));
    CHECK(s.per_sample.data()[2] == Approx(1.0 / r).epsilon(1e-12));
  }
}

TEST_CASE("empirical NTK equals explicit parameter-gradient dot products", "[align]") {
  ga::Generator gen(12);
  std::vector<Var> params = {Var(ga::randn<T>({5, 3}, gen), true),
                             Var(ga::randn<T>({1, 5}, gen), true)};
  auto model = [&](const Var& x) {
    return ga::matmul(ga::tanh(ga::matmul(x, params[0], false, true)), params[1], false, true) *
           1.5;
  };
  const Tensor X = ga::randn<T>({6, 3}, gen), y = ga::rand_bernoulli<T>({6}, gen, 0.5);
  const Tensor x0 = X.rows(2, 1).clone();
  const T lr = 0.01;
  const auto s = ga::align::empirical_ntk<T>(model, params, x0, X, y, lr);
  auto param_grad = [&](const Tensor& point) {
    const auto g = ga::grad<T>({ga::sum(model(Var(point)))}, params);
    return std::vector<Tensor>{g[0].value(), g[1].value()};
  };
  const auto g0 = param_grad(x0);
  double rate = 0;
  for (ga::index_t i = 0; i < 6; ++i) {
    const auto gi = param_grad(X.rows(i, 1).clone());
    double k = 0;
    for (int p = 0; p < 2; ++p) k += (g0[p].array() * gi[p].array()).sum();
    CHECK(s.kernel.data()[i] == Approx(k).epsilon(1e-12));
    const double f = model(Var(X.rows(i, 1).clone())).item();
    rate += k * (y.data()[i] - 1 / (1 + std::exp(-f)));
  }
  CHECK(s.rate_of_change == Approx(lr * rate / 6).epsilon(1e-12));
  CHECK(s.kernel.data()[2] > 0);  // K(x0, x0) = |grad f(x0)|^2
}

TEST_CASE("alignment tools reject malformed input", "[align][errors]") {
  ga::Generator gen(13);
  const Tensor W = ga::randn<T>({3, 4}, gen);
  auto flat = [&](const auto& x) {
    return ga::sum(ga::matmul(x, ga::constant_like(x, W), false, true));
  };
  CHECK_THROWS_WITH(ga::align::grokalign_penalty<T>(flat, ga::randn<T>({2, 4}, gen), gen),
                    Catch::Contains("grokalign_penalty") && Catch::Contains("[B, C]"));
  CHECK_THROWS_WITH(ga::align::grokalign_penalty<T>(linear_model(W), ga::randn<T>({2, 4}, gen), gen,
                                                    {.projections = 0}),
                    Catch::Contains("projections"));
  const Var out = Var(ga::randn<T>({2, 3}, gen));
  CHECK_THROWS_WITH(ga::align::grokalign_penalty_from(out, Var(ga::randn<T>({2, 4}, gen)), gen),
                    Catch::Contains("require grad"));
  CHECK_THROWS_AS(ga::align::pc1<T>(linear_model(W), ga::randn<T>({2, 4}, gen), 0), ga::ShapeError);
}
