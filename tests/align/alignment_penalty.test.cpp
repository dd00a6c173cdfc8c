// The centroid- and Jacobian-alignment penalties and the Jacobian-alignment measurement
// (align/alignment_penalty.hpp, align/jacobian_alignment.hpp): values on hand-made linear
// models, agreement with centroids() and with full per-sample Jacobians, the bias-free
// ReLU identity J(x) x = f(x), weight gradients against finite differences (MLP, CNN,
// transformer sub-map), and the documented values and errors for bad input.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <grokalign/align.hpp>
#include <grokalign/grokalign.hpp>
#include <grokalign/nn.hpp>

#include "tiny_transformer.hpp"

namespace ga = grokalign;
namespace al = grokalign::align;
using T = double;
using Tensor = ga::Tensor<T>;
using Var = ga::Var<T>;
using al::Estimator;

namespace {

// f(x) = x W^T for a constant W: J = W for every sample.
auto linear_net(const Tensor& W) {
  return [W](const auto& x) { return ga::matmul(x, ga::constant_like(x, W), false, true); };
}

// JA of a constant Jacobian W at each row of x: |W x|^2 / (|x|^2 |W|_F^2).
Eigen::VectorXd linear_ja(const Tensor& W, const Tensor& x) {
  const Eigen::MatrixXd Wm = W.matrix(), xm = x.matrix();
  Eigen::VectorXd r(xm.rows());
  for (Eigen::Index b = 0; b < xm.rows(); ++b)
    r(b) =
        (Wm * xm.row(b).transpose()).squaredNorm() / (xm.row(b).squaredNorm() * Wm.squaredNorm());
  return r;
}

// Checks the gradient of a scalar penalty in `params` against central differences on at
// most `max_entries` evenly spaced entries of each parameter (keeps the transformer fast).
// `penalty` must redraw its random projections from a fixed seed at every call.
void check_weight_gradient(const std::function<Var()>& penalty, const std::vector<Var>& params,
                           double rtol = 1e-6, ga::index_t max_entries = 1000) {
  const auto g = ga::grad<T>({penalty()}, params, {}, {.allow_unused = true});
  double largest = 0;  // the check is not vacuous: some entry of the gradient is not zero
  for (std::size_t p = 0; p < params.size(); ++p) {
    Tensor w = params[p].value();  // shares storage: perturbed in place and restored
    const ga::index_t n = w.numel(), step = std::max<ga::index_t>(1, n / max_entries);
    double diff = 0, scale = 0;
    for (ga::index_t i = 0; i < n; i += step) {
      const T keep = w.data()[i], h = 1e-6;
      w.data()[i] = keep + h;
      const T fp = penalty().item();
      w.data()[i] = keep - h;
      const T fm = penalty().item();
      w.data()[i] = keep;
      const T fd = (fp - fm) / (2 * h), an = g[p].defined() ? g[p].value().data()[i] : 0.0;
      diff = std::max(diff, std::abs(an - fd));
      scale = std::max(scale, std::abs(fd));
    }
    INFO("parameter " << p << ": max abs diff " << diff << ", largest entry " << scale);
    CHECK(diff <= rtol * scale + 1e-9);
    largest = std::max(largest, scale);
  }
  CHECK(largest > 1e-4);
}

// Every variant of both penalties, from the training forward pass and from the model.
template <class Model>
void check_all_penalties(Model& model, const Tensor& x, const std::vector<Var>& params, double rtol,
                         ga::index_t max_entries, bool all_estimators) {
  auto from = [&](auto make) {
    return [&model, &x, make] {
      ga::Generator gen(99);
      const Var xv(x, true);
      return make(Var(model(xv)), xv, gen);
    };
  };
  SECTION("centroid alignment") {
    check_weight_gradient(from([](const Var& o, const Var& xv, ga::Generator&) {
                            return al::centroid_alignment_penalty_from(o, xv);
                          }),
                          params, rtol, max_entries);
  }
  SECTION("Jacobian alignment, one output projection, J x by double backward") {
    check_weight_gradient(from([](const Var& o, const Var& xv, ga::Generator& g) {
                            return al::jacobian_alignment_penalty_from(o, xv, g);
                          }),
                          params, rtol, max_entries);
  }
  SECTION("Jacobian alignment through the model, J x by forward mode") {
    check_weight_gradient(
        [&] {
          ga::Generator gen(99);
          return al::jacobian_alignment_penalty<T>(model, x, gen);
        },
        params, rtol, max_entries);
  }
  if (!all_estimators) return;
  SECTION("squared and constrained centroid penalty") {
    check_weight_gradient(from([](const Var& o, const Var& xv, ga::Generator&) {
                            return al::centroid_alignment_penalty_from(o, xv, {.squared = true}) +
                                   al::centroid_alignment_penalty_from(
                                       o, xv, {.constrained = true, .level = 0.9});
                          }),
                          params, rtol, max_entries);
  }
  SECTION("Jacobian alignment, exact and three projections, squared") {
    check_weight_gradient(
        from([](const Var& o, const Var& xv, ga::Generator& g) {
          return al::jacobian_alignment_penalty_from(o, xv, g, {.estimator = Estimator::kExact}) +
                 al::jacobian_alignment_penalty_from(o, xv, g, {.squared = true, .projections = 3});
        }),
        params, rtol, max_entries);
  }
  SECTION("Jacobian alignment through the model, input projections") {
    check_weight_gradient(
        [&] {
          ga::Generator gen(99);
          return al::jacobian_alignment_penalty<T>(
              model, x, gen, {.estimator = Estimator::kInputProjections, .projections = 2});
        },
        params, rtol, max_entries);
  }
}

}  // namespace

TEST_CASE("linear model: centroid alignment and JA match their closed forms", "[align]") {
  ga::Generator gen(1);
  const Tensor W = ga::randn<T>({4, 6}, gen), x = ga::randn<T>({5, 6}, gen);
  const auto model = linear_net(W);
  const Var xv(x, true);
  const Var out = model(xv);

  // c = W^T 1 for every sample, so A_b = <W^T 1, x_b> / (|W^T 1| |x_b|).
  const Eigen::VectorXd c = W.matrix().colwise().sum().transpose();
  const Var A = al::centroid_alignment_from(out, xv);
  for (ga::index_t b = 0; b < 5; ++b) {
    const Eigen::VectorXd xb = x.matrix().row(b).transpose();
    CHECK(A.value().data()[b] == Approx(c.dot(xb) / (c.norm() * xb.norm())).epsilon(1e-12));
  }

  const Eigen::VectorXd ja = linear_ja(W, x);
  const auto exact = al::jacobian_alignment<T>(model, x);
  const Var ja_from = al::jacobian_alignment_from(out, xv, gen, {.estimator = Estimator::kExact});
  for (ga::index_t b = 0; b < 5; ++b) {
    CHECK(exact.alignment.data()[b] == Approx(ja(b)).epsilon(1e-12));
    CHECK(ja_from.value().data()[b] == Approx(ja(b)).epsilon(1e-12));
    CHECK(exact.frobenius_sq.data()[b] == Approx(W.matrix().squaredNorm()).epsilon(1e-12));
    const Eigen::VectorXd xb = x.matrix().row(b).transpose();
    CHECK(exact.along_input.data()[b] == Approx((W.matrix() * xb).squaredNorm()).epsilon(1e-12));
  }
  CHECK(exact.mean == Approx(ja.mean()).epsilon(1e-12));
  CHECK(
      al::jacobian_alignment_penalty_from(out, xv, gen, {.estimator = Estimator::kExact}).item() ==
      Approx(1 - ja.mean()).epsilon(1e-12));
}

TEST_CASE("random estimators keep JA in [0, 1] and estimate |J|_F^2 without bias", "[align]") {
  ga::Generator gen(2);
  const Tensor W = ga::randn<T>({4, 5}, gen), x = ga::randn<T>({3, 5}, gen);
  const auto model = linear_net(W);
  const double fro = W.matrix().squaredNorm();
  for (const Estimator e : {Estimator::kOutputProjections, Estimator::kInputProjections}) {
    INFO("estimator " << int(e));
    const int draws = 1500;
    double sum = 0;
    for (int i = 0; i < draws; ++i) {
      const auto s = al::jacobian_alignment<T>(model, x, gen, {.estimator = e});
      for (ga::index_t b = 0; b < 3; ++b) {
        CHECK(s.alignment.data()[b] >= 0.0);
        CHECK(s.alignment.data()[b] <= 1.0 + 1e-12);
        sum += s.frobenius_sq.data()[b];
      }
    }
    // About 5 standard errors for this W (the spread of one draw is below |W|_F^2).
    CHECK(sum / (3 * draws) == Approx(fro).epsilon(0.05));
  }
}

TEST_CASE("a rank-one Jacobian along the input has JA = 1 for every estimator", "[align]") {
  ga::Generator gen(3);
  // W = a x0^T: J x = a <x0, x>, so JA = cos^2(x, x0): 1 at x0 (and at -2 x0).
  const Tensor a = ga::randn<T>({3, 1}, gen), x0 = ga::randn<T>({1, 6}, gen);
  const Tensor W = Tensor::from_matrix(a.matrix() * x0.matrix());
  Tensor x = Tensor::zeros({3, 6});
  const Tensor other = ga::randn<T>({1, 6}, gen);
  for (int j = 0; j < 6; ++j) {
    x.at(0, j) = x0.at(0, j);
    x.at(1, j) = -2 * x0.at(0, j);
    x.at(2, j) = other.at(0, j);
  }
  const auto model = linear_net(W);
  const double cos2 = std::pow(x0.matrix().row(0).dot(other.matrix().row(0)), 2) /
                      (x0.matrix().squaredNorm() * other.matrix().squaredNorm());
  const auto exact = al::jacobian_alignment<T>(model, x);
  CHECK(exact.alignment.data()[0] == Approx(1.0).epsilon(1e-12));
  CHECK(exact.alignment.data()[1] == Approx(1.0).epsilon(1e-12));
  CHECK(exact.alignment.data()[2] == Approx(cos2).epsilon(1e-12));
  for (int draw = 0; draw < 5; ++draw) {
    const Var xv(x, true);
    const Var ja = al::jacobian_alignment_from(Var(model(xv)), xv, gen, {.projections = 2});
    CHECK(ja.value().data()[0] == Approx(1.0).epsilon(1e-12));
    CHECK(ja.value().data()[1] == Approx(1.0).epsilon(1e-12));
    for (const Estimator e : {Estimator::kOutputProjections, Estimator::kInputProjections}) {
      const auto s = al::jacobian_alignment<T>(model, x, gen, {.estimator = e});
      CHECK(s.alignment.data()[0] == Approx(1.0).epsilon(1e-12));
      CHECK(s.alignment.data()[1] == Approx(1.0).epsilon(1e-12));
    }
  }
}

TEST_CASE("the centroid penalty is 1 - mean centroid alignment; its options", "[align]") {
  ga::Generator gen(4);
  auto mlp = ga::nn::make_mlp<T>(5, 7, 3, 3, /*bias=*/true, gen);
  const Tensor x = ga::randn<T>({6, 5}, gen);
  const auto c = al::centroids<T>(mlp, x);
  const double mean_a = c.alignment.array().mean();
  const double mean_sq = (1 - c.alignment.array()).square().mean();
  const Var xv(x, true);
  const Var out = mlp(xv);
  CHECK(al::centroid_alignment_penalty_from(out, xv).item() == Approx(1 - mean_a).epsilon(1e-12));
  CHECK(al::centroid_alignment_penalty<T>(mlp, x).item() == Approx(1 - mean_a).epsilon(1e-12));
  CHECK(al::centroid_alignment_penalty_from(out, xv, {.squared = true}).item() ==
        Approx(mean_sq).epsilon(1e-12));
  CHECK(al::centroid_alignment_penalty_from(out, xv, {.constrained = true, .level = 0.5}).item() ==
        Approx(std::abs(0.5 - mean_a)).epsilon(1e-12));
  CHECK(al::centroid_alignment_penalty_from(out, xv,
                                            {.squared = true, .constrained = true, .level = 0.5})
            .item() == Approx((0.5 - mean_a) * (0.5 - mean_a)).epsilon(1e-12));
}

TEST_CASE("JA of an MLP with biases equals the full per-sample Jacobians'", "[align]") {
  ga::Generator gen(5);
  auto mlp = ga::nn::make_mlp<T>(4, 6, 3, 3, /*bias=*/true, gen);
  const Tensor x = ga::randn<T>({5, 4}, gen);
  const Tensor jac = ga::per_sample_jacobian<T>(mlp, x);  // [5, 3, 4]
  const auto s = al::jacobian_alignment<T>(mlp, x);
  for (ga::index_t b = 0; b < 5; ++b) {
    const Eigen::Map<const Eigen::Matrix<T, 3, 4, Eigen::RowMajor>> J(jac.data() + b * 12);
    const Eigen::VectorXd xb = x.matrix().row(b).transpose();
    const double ja = (J * xb).squaredNorm() / (xb.squaredNorm() * J.squaredNorm());
    CHECK(s.alignment.data()[b] == Approx(ja).epsilon(1e-12));
  }
  // With one output the projection is +-1 and the split estimator is exact for every draw.
  auto scalar = ga::nn::make_mlp<T>(4, 6, 3, 1, /*bias=*/true, gen);
  const auto exact1 = al::jacobian_alignment<T>(scalar, x);
  const Var xv(x, true);
  const Var ja1 = al::jacobian_alignment_from(Var(scalar(xv)), xv, gen);
  const auto fwd1 = al::jacobian_alignment<T>(scalar, x, gen, {});
  for (ga::index_t b = 0; b < 5; ++b) {
    CHECK(ja1.value().data()[b] == Approx(exact1.alignment.data()[b]).epsilon(1e-12));
    CHECK(fwd1.alignment.data()[b] == Approx(exact1.alignment.data()[b]).epsilon(1e-12));
  }
}

TEST_CASE("bias-free ReLU network: J(x) x = f(x), by double backward and by forward mode",
          "[align]") {
  ga::Generator gen(6);
  auto mlp = ga::nn::make_mlp<T>(5, 8, 3, 4, /*bias=*/false, gen);
  const Tensor x = ga::randn<T>({6, 5}, gen);
  const Tensor f = mlp(x);
  const Var xv(x, true);
  // |J x|^2 from the double backward (J x = grad_w <J^T w, x>), from forward mode, exactly.
  const auto parts = al::detail::parts_from(Var(mlp(xv)), xv, gen, {}, "test");
  const auto fwd = al::jacobian_alignment<T>(mlp, x, gen, {});
  const auto exact = al::jacobian_alignment<T>(mlp, x);
  for (ga::index_t b = 0; b < 6; ++b) {
    const double f2 = f.matrix().row(b).squaredNorm();
    CHECK(parts.along.value().data()[b] == Approx(f2).epsilon(1e-12));
    CHECK(fwd.along_input.data()[b] == Approx(f2).epsilon(1e-12));
    CHECK(exact.along_input.data()[b] == Approx(f2).epsilon(1e-12));
  }
  // The identity is a property of this network, not a shortcut: with biases it fails.
  auto biased = ga::nn::make_mlp<T>(5, 8, 3, 4, /*bias=*/true, gen);
  const Tensor fb = biased(x);
  const auto eb = al::jacobian_alignment<T>(biased, x);
  CHECK(eb.along_input.data()[0] != Approx(fb.matrix().row(0).squaredNorm()).epsilon(1e-6));
}

TEST_CASE("penalty weight gradients match finite differences: MLP", "[align][higher-order]") {
  ga::Generator gen(7);
  auto mlp = ga::nn::make_mlp<T>(5, 6, 3, 3, /*bias=*/true, gen);
  const Tensor x = ga::randn<T>({4, 5}, gen);
  check_all_penalties(mlp, x, mlp.trainable_parameters(), 1e-6, 1000, /*all_estimators=*/true);
}

TEST_CASE("penalty weight gradients match finite differences: CNN", "[align][higher-order]") {
  ga::Generator gen(8);
  ga::nn::Sequential<T> cnn(ga::nn::Conv2d<T>(1, 2, 3, /*stride=*/2, /*padding=*/1, true, gen),
                            ga::nn::ReLU<T>(), ga::nn::Flatten<T>(),
                            ga::nn::Linear<T>(2 * 3 * 3, 3, true, gen));
  const Tensor x = ga::randn<T>({3, 1, 6, 6}, gen);
  check_all_penalties(cnn, x, cnn.trainable_parameters(), 1e-6, 1000, /*all_estimators=*/false);
}

using grokalign_test::TinyTransformer;

TEST_CASE("penalty weight gradients match finite differences: transformer sub-map",
          "[align][higher-order]") {
  TinyTransformer t;
  std::vector<Var> used = t.sub_map_parameters();
  auto sub = t.sub_map();
  check_all_penalties(sub, t.embedded, used, 1e-5, 40, /*all_estimators=*/false);
}

TEST_CASE("zero inputs and models that ignore their input give 0 alignment, never NaN",
          "[align][errors]") {
  ga::Generator gen(9);
  auto mlp = ga::nn::make_mlp<T>(4, 6, 2, 3, /*bias=*/true, gen);
  Tensor x = ga::randn<T>({3, 4}, gen);
  for (int j = 0; j < 4; ++j) x.at(1, j) = 0.0;  // one zero row
  const auto params = mlp.trainable_parameters();
  const Var xv(x, true);
  const Var out = mlp(xv);
  const Var A = al::centroid_alignment_from(out, xv);
  const Var ja = al::jacobian_alignment_from(out, xv, gen);
  CHECK(A.value().data()[1] == 0.0);
  CHECK(ja.value().data()[1] == 0.0);
  CHECK(al::jacobian_alignment<T>(mlp, x).alignment.data()[1] == 0.0);
  CHECK(al::centroids<T>(mlp, x).alignment.data()[1] == 0.0);
  const Var pen = al::centroid_alignment_penalty_from(out, xv) +
                  al::jacobian_alignment_penalty_from(out, xv, gen) +
                  al::jacobian_alignment_penalty<T>(mlp, x, gen);
  CHECK(std::isfinite(pen.item()));
  for (const Var& g : ga::grad<T>({pen}, params, {}, {.allow_unused = true}))
    if (g.defined())
      for (ga::index_t i = 0; i < g.numel(); ++i) CHECK(std::isfinite(g.value().data()[i]));

  // A model that does not use its input (J = 0): every alignment is 0 and each penalty 1.
  const Var bias(ga::randn<T>({1, 3}, gen), true);
  auto ignores = [&](const auto& in) {
    using X = std::decay_t<decltype(in)>;
    return ga::matmul(ga::constant_like(in, Tensor::ones({3, 1})), ga::lift<X>(bias));
  };
  const Tensor y = ga::randn<T>({3, 4}, gen);
  const Var yv(y, true);
  const Var o = ignores(yv);
  CHECK(al::centroid_alignment_penalty_from(o, yv).item() == 1.0);
  CHECK(al::jacobian_alignment_penalty_from(o, yv, gen).item() == 1.0);
  CHECK(al::jacobian_alignment_penalty_from(o, yv, gen, {.estimator = Estimator::kExact}).item() ==
        1.0);
  CHECK(al::jacobian_alignment_penalty<T>(ignores, y, gen).item() == 1.0);
  CHECK(al::jacobian_alignment_penalty<T>(ignores, y, gen,
                                          {.estimator = Estimator::kInputProjections})
            .item() == 1.0);
  CHECK(al::jacobian_alignment<T>(ignores, y).mean == 0.0);
  // ...and a constant output that requires no grad at all.
  CHECK(al::centroid_alignment_penalty_from(Var(Tensor::ones({3, 2})), yv).item() == 1.0);
}

TEST_CASE("alignment penalties reject malformed input", "[align][errors]") {
  ga::Generator gen(10);
  const Tensor W = ga::randn<T>({3, 4}, gen), x = ga::randn<T>({2, 4}, gen);
  const auto model = linear_net(W);
  const Var out = model(Var(x));
  CHECK_THROWS_WITH(al::centroid_alignment_penalty_from(out, Var(x)),
                    Catch::Contains("centroid_alignment") && Catch::Contains("require grad"));
  CHECK_THROWS_WITH(al::jacobian_alignment_penalty_from(out, Var(x), gen),
                    Catch::Contains("jacobian_alignment") && Catch::Contains("require grad"));
  const Var xv(x, true);
  const Var scalar = ga::sum(model(xv));
  CHECK_THROWS_WITH(al::centroid_alignment_penalty_from(scalar, xv), Catch::Contains("[B, C]"));
  CHECK_THROWS_WITH(al::jacobian_alignment_penalty_from(scalar, xv, gen),
                    Catch::Contains("[B, C]"));
  const Var other_batch(ga::randn<T>({3, 4}, gen), true);
  CHECK_THROWS_WITH(al::centroid_alignment_penalty_from(Var(model(xv)), other_batch),
                    Catch::Contains("[B, C]"));
  CHECK_THROWS_WITH(
      al::jacobian_alignment_penalty_from(Var(model(xv)), xv, gen, {.projections = 0}),
      Catch::Contains("projections"));
  CHECK_THROWS_WITH(al::jacobian_alignment_penalty<T>(model, x, gen, {.projections = -1}),
                    Catch::Contains("projections"));
  CHECK_THROWS_WITH(al::jacobian_alignment_penalty_from(
                        Var(model(xv)), xv, gen, {.estimator = Estimator::kInputProjections}),
                    Catch::Contains("model itself"));
  auto flat = [&](const auto& in) { return ga::sum(model(in)); };
  CHECK_THROWS_WITH(al::jacobian_alignment<T>(flat, x), Catch::Contains("[B, C]"));
  CHECK_THROWS_WITH(al::jacobian_alignment_penalty<T>(flat, x, gen), Catch::Contains("[B, C]"));
  CHECK_THROWS_AS(al::jacobian_alignment<T>(model, Tensor::from({}, {1.0})), ga::ShapeError);
}
