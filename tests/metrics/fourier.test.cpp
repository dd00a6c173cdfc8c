// Fourier analysis for modular addition on constructed matrices: the basis is orthonormal,
// a pure-frequency embedding has a one-hot profile at that frequency, the profile keeps the
// energy (Parseval), and the Gini coefficient matches its closed forms.
#include <catch2/catch.hpp>

#include <cmath>
#include <grokalign/metrics.hpp>
#include <numbers>

#include "expect_error.hpp"

namespace ga = grokalign;
namespace gm = grokalign::metrics;
using metrics_test::expect_error;
using Tensor = ga::Tensor<double>;

namespace {

// Rows n = 0..rows-1: a cos(2 pi k n / p) + b sin(2 pi k n / p) for fixed vectors a, b.
Tensor pure_frequency(ga::index_t p, ga::index_t rows, ga::index_t k, ga::index_t d,
                      ga::Generator& gen) {
  const Tensor a = ga::randn<double>({d}, gen), b = ga::randn<double>({d}, gen);
  Tensor W = Tensor::empty({rows, d});
  for (ga::index_t n = 0; n < rows; ++n) {
    const double t = 2 * std::numbers::pi * static_cast<double>(k * n) / static_cast<double>(p);
    for (ga::index_t j = 0; j < d; ++j)
      W.at(n, j) = a.data()[j] * std::cos(t) + b.data()[j] * std::sin(t);
  }
  return W;
}

}  // namespace

TEST_CASE("fourier_basis: orthonormal rows in the documented order", "[metrics]") {
  for (ga::index_t p : {3, 7, 113}) {
    const Tensor B = gm::fourier_basis<double>(p);
    REQUIRE(B.shape() == ga::Shape{p, p});
    const Eigen::MatrixXd G = B.matrix() * B.matrix().transpose();
    CHECK((G - Eigen::MatrixXd::Identity(p, p)).cwiseAbs().maxCoeff() < 1e-12);
  }
  const ga::Tensor<float> Bf = gm::fourier_basis<float>(5);
  CHECK((Bf.matrix() * Bf.matrix().transpose() - Eigen::MatrixXf::Identity(5, 5))
            .cwiseAbs()
            .maxCoeff() < 1e-6f);
  const Tensor B = gm::fourier_basis<double>(7);
  CHECK(B.at(0, 3) == Approx(1 / std::sqrt(7.0)));
  CHECK(B.at(3, 2) == Approx(std::sqrt(2 / 7.0) * std::cos(2 * std::numbers::pi * 2 * 2 / 7)));
  CHECK(B.at(4, 2) == Approx(std::sqrt(2 / 7.0) * std::sin(2 * std::numbers::pi * 2 * 2 / 7)));
}

TEST_CASE("fourier_norms: a pure-frequency embedding is one-hot at its frequency", "[metrics]") {
  ga::Generator gen(3);
  const ga::index_t p = 13, k = 4;
  Tensor W = pure_frequency(p, p + 1, k, 5, gen);
  for (ga::index_t j = 0; j < 5; ++j) W.at(p, j) = 100.0 + j;  // the "=" row is ignored
  const Tensor prof = gm::embedding_fourier_norms(W, p);
  REQUIRE(prof.numel() == gm::num_frequencies(p));
  REQUIRE(prof.numel() == 7);
  for (ga::index_t f = 0; f < prof.numel(); ++f) {
    INFO("frequency " << f << ": " << prof.data()[f]);
    if (f == k)
      CHECK(prof.data()[f] > 1.0);
    else
      CHECK(prof.data()[f] < 1e-12);
  }
  CHECK(gm::gini(prof) == Approx(1 - 1.0 / 7).margin(1e-12));
  CHECK(gm::key_frequencies(prof) == std::vector<ga::index_t>{k});
  CHECK(gm::top_frequencies(prof, 1) == std::vector<ga::index_t>{k});
  // The "=" row (and a p-row matrix without it) give the same profile.
  const Tensor prof_p = gm::fourier_norms(Tensor(W.rows(0, p)).clone(), p);
  for (ga::index_t f = 0; f < prof.numel(); ++f) CHECK(prof_p.data()[f] == prof.data()[f]);
}

TEST_CASE("fourier_norms: two frequencies, Parseval, key and top frequencies", "[metrics]") {
  ga::Generator gen(5);
  const ga::index_t p = 11;
  Tensor W = pure_frequency(p, p, 2, 4, gen);
  const Tensor W5 = pure_frequency(p, p, 5, 4, gen);
  W.array() += 3.0 * W5.array();
  const Tensor prof = gm::fourier_norms(W, p);
  CHECK(gm::key_frequencies(prof, 0.01) == std::vector<ga::index_t>{5, 2});
  CHECK(gm::top_frequencies(prof, 2) == std::vector<ga::index_t>{5, 2});
  CHECK(gm::top_frequencies(prof, 100).size() == 6);
  CHECK(gm::top_frequencies(prof, 0).empty());

  const Tensor R = ga::randn<double>({p, 6}, gen);
  const Tensor pr = gm::fourier_norms(R, p);
  CHECK(pr.array().square().sum() == Approx(R.array().square().sum()).epsilon(1e-12));
  CHECK(gm::key_frequencies(pr, 1.0).empty());  // nothing exceeds the maximum itself
  CHECK(gm::key_frequencies(pr, 0.999).size() == 1);
}

TEST_CASE("unembed_fourier_norms: rows of W_U^T W_out by output token", "[metrics]") {
  ga::Generator gen(7);
  const ga::index_t p = 17, k = 6, d_model = 3, d_mlp = 8;
  // Column t of W_U is the pure-frequency pattern of token t in its first two coordinates.
  const Tensor rows = pure_frequency(p, p + 1, k, d_model, gen);  // [p + 1, d_model]
  const Tensor W_U = Tensor::from_matrix(rows.matrix().transpose());
  const Tensor W_out = ga::randn<double>({d_model, d_mlp}, gen);
  const Tensor prof = gm::unembed_fourier_norms(W_U, W_out, p);
  REQUIRE(prof.numel() == 9);
  CHECK(gm::key_frequencies(prof) == std::vector<ga::index_t>{k});
  CHECK(gm::gini(prof) == Approx(1 - 1.0 / 9).margin(1e-12));
}

TEST_CASE("gini: closed forms", "[metrics]") {
  CHECK(gm::gini(std::vector<double>{0, 0, 0, 5}) == Approx(0.75));
  CHECK(gm::gini(std::vector<double>{0, 0, 2, 0, 0}) == Approx(0.8));
  CHECK(gm::gini(std::vector<double>{3, 3, 3, 3}) == Approx(0.0).margin(1e-15));
  CHECK(gm::gini(std::vector<double>{1, 2, 3}) == Approx(2.0 / 9));  // (-2 + 0 + 6) / (3 * 6)
  CHECK(gm::gini(std::vector<double>{3, 1, 2}) == Approx(2.0 / 9));  // order does not matter
  CHECK(gm::gini(std::vector<double>{0, 0}) == 0.0);
  CHECK(gm::gini(std::vector<double>{7}) == 0.0);
  Tensor one_hot = Tensor::from({57}, std::vector<double>(57, 0.0));
  one_hot.data()[0] = 2.5;
  CHECK(gm::gini(one_hot) == Approx(1 - 1.0 / 57));
}

TEST_CASE("fourier and gini: bad inputs", "[metrics][errors]") {
  expect_error([] { gm::fourier_basis<double>(8); }, "odd and at least 3, got 8");
  expect_error([] { gm::fourier_basis<double>(1); }, "got 1");
  expect_error([] { gm::fourier_norms(Tensor::zeros({12, 3}), 13); }, "p = 13 or p + 1 rows");
  expect_error([] { gm::fourier_norms(Tensor::zeros({13}), 13); }, "[13]");
  expect_error(
      [] {
        gm::unembed_fourier_norms(Tensor::zeros({4, 14}), Tensor::zeros({5, 8}), 13);
      },
      "same d_model");
  expect_error([] { gm::gini(std::vector<double>{1, -1}); }, "entry 1 is -1");
  expect_error([] { gm::gini(std::vector<double>{1, std::nan("")}); }, "finite");
  expect_error([] { gm::gini(std::vector<double>{}); }, "no values");
  expect_error([] { gm::key_frequencies(Tensor::ones({3}), 1.5); }, "fraction");
  expect_error([] { gm::top_frequencies(Tensor::ones({3}), -1); }, "count");
}
