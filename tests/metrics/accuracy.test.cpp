// Accuracy by argmax, sign and sigmoid threshold on tiny hand-made outputs; a model over a
// data set in chunks (any chunk size gives the same answer); accuracy under Gaussian noise
// on a coordinate range (noise off the coordinates the model reads changes nothing).
#include <catch2/catch.hpp>

#include <grokalign/grokalign.hpp>
#include <grokalign/metrics.hpp>
#include <grokalign/nn.hpp>

#include "expect_error.hpp"

namespace ga = grokalign;
namespace gm = grokalign::metrics;
using metrics_test::expect_error;
using Tensor = ga::Tensor<double>;
using Var = ga::Var<double>;

namespace {

// f(x) = x W^T: logits [n, C] for inputs [n, d].
auto linear_model(const Tensor& W) {
  return [W](const auto& x) { return ga::matmul(x, ga::constant_like(x, W), false, true); };
}

// Reads only coordinate 0 of each row: out = x[:, 0] (shape [n, 1]).
auto first_coordinate_model() {
  return [](const auto& x) { return ga::narrow(x, 1, 0, 1); };
}

}  // namespace

TEST_CASE("accuracy on computed outputs", "[metrics]") {
  // Row 2 ties (0.5, 0.5): the first maximum, class 0, is the prediction.
  const Tensor logits = Tensor::from({4, 2}, {2, 1, -1, 3, 0.5, 0.5, 0, -1});
  CHECK(gm::argmax_accuracy(logits, std::vector<ga::index_t>{0, 1, 0, 0}) == 1.0);
  CHECK(gm::argmax_accuracy(logits, std::vector<ga::index_t>{0, 1, 1, 1}) == 0.5);
  CHECK(gm::argmax_accuracy(logits, ga::Indices({1, 0, 1, 1})) == 0.0);

  // Sign: an output of exactly 0 is wrong for either target.
  const Tensor out = Tensor::from({5}, {0.3, -2, 0, 1e-9, -1e-9});
  CHECK(gm::sign_accuracy(out, Tensor::from({5}, {1, -1, 1, 1, 1})) == Approx(0.6));
  CHECK(gm::sign_accuracy(out.reshape({5, 1}), Tensor::from({5, 1}, {-1, -1, -1, 1, -1})) ==
        Approx(0.6));

  // Sigmoid threshold: logit > 0 predicts 1; logit 0 (sigmoid 0.5) predicts 0.
  CHECK(gm::sigmoid_accuracy(out, Tensor::from({5}, {1, 0, 0, 1, 0})) == 1.0);
  CHECK(gm::sigmoid_accuracy(out, Tensor::from({5}, {0, 0, 1, 1, 0})) == Approx(0.6));
}

TEST_CASE("accuracy of a model in chunks of rows", "[metrics]") {
  ga::Generator gen(1);
  const Tensor x = ga::randn<double>({23, 4}, gen);
  const Tensor W = ga::randn<double>({3, 4}, gen);
  const auto model = linear_model(W);
  const Tensor logits = model(x);
  std::vector<ga::index_t> labels(23);
  for (int i = 0; i < 23; ++i) labels[i] = i % 3;
  const double whole = gm::argmax_accuracy(logits, labels);
  CHECK(whole > 0.0);
  CHECK(whole < 1.0);
  for (ga::index_t batch : {1, 5, 23, 1000}) CHECK(gm::accuracy(model, x, labels, batch) == whole);

  // A module, evaluated on Tensors (no graph).
  auto mlp = ga::nn::make_mlp<double>(4, 8, 2, 3, true, gen);
  const double mlp_whole = gm::argmax_accuracy(mlp(x), labels);
  CHECK(gm::accuracy(mlp, x, ga::Indices(labels), 4) == mlp_whole);

  // A callable on Var only is evaluated with recording off.
  auto var_only = [&](const Var& v) { return mlp(v); };
  CHECK(gm::accuracy(var_only, x, labels, 6) == mlp_whole);

  // Sign and sigmoid rules over a scalar-output model.
  const Tensor t = Tensor::from({23}, std::vector<double>(23, 1.0));
  const auto first = first_coordinate_model();
  double positive = 0;
  for (int i = 0; i < 23; ++i) positive += x.at(i, 0) > 0;
  CHECK(gm::sign_accuracy(first, x, t, 4) == Approx(positive / 23));
  CHECK(gm::sigmoid_accuracy(first, x, t, 7) == Approx(positive / 23));
}

TEST_CASE("accuracy under Gaussian noise on a coordinate range", "[metrics]") {
  // +-1 targets; x[:, 0] = 0.5 * target, the other coordinates zero.
  const ga::index_t n = 400, d = 6;
  Tensor x = Tensor::zeros({n, d});
  Tensor targets = Tensor::empty({n});
  for (ga::index_t i = 0; i < n; ++i) {
    targets.data()[i] = i % 2 ? 1.0 : -1.0;
    x.at(i, 0) = 0.5 * targets.data()[i];
  }
  const auto model = first_coordinate_model();
  ga::Generator gen(11);
  CHECK(gm::noisy_sign_accuracy(model, x, targets, {.sigma = 0.0}, gen) == 1.0);
  // Noise on coordinates 1..d-1 (the XOR run's noise coordinates) does nothing here.
  CHECK(gm::noisy_sign_accuracy(model, x, targets, {.sigma = 5.0, .begin = 1, .end = d}, gen) ==
        1.0);
  // Noise of sigma 0.5 on coordinate 0: P(correct) = Phi(1) = 0.841.
  const gm::NoiseOptions on_signal{.sigma = 0.5, .begin = 0, .end = 1};
  ga::Generator g1(42), g2(42);
  const double a1 = gm::noisy_sign_accuracy(model, x, targets, on_signal, g1, 400);
  const double a2 = gm::noisy_sign_accuracy(model, x, targets, on_signal, g2, 17);
  CHECK(a1 == a2);  // same seed, any chunk size: the same draws
  CHECK(a1 > 0.78);
  CHECK(a1 < 0.90);
  // The other rules take the same noise.
  Tensor labels01 = Tensor::empty({n});
  std::vector<ga::index_t> classes(n);
  for (ga::index_t i = 0; i < n; ++i) {
    labels01.data()[i] = targets.data()[i] > 0 ? 1.0 : 0.0;
    classes[i] = targets.data()[i] > 0 ? 1 : 0;
  }
  ga::Generator g3(42), g4(42);
  CHECK(gm::noisy_sigmoid_accuracy(model, x, labels01, on_signal, g3, 50) == a1);
  // Two logits (0, x0): argmax picks class 1 iff x0 > 0, as the sign rule does.
  auto two_logits = [](const auto& v) {
    using X = std::decay_t<decltype(v)>;
    return ga::concat(std::vector<X>{ga::narrow(v, 1, 0, 1) * 0.0, ga::narrow(v, 1, 0, 1)}, 1);
  };
  CHECK(gm::noisy_accuracy(two_logits, x, ga::Indices(classes), on_signal, g4, 64) == a1);
}

TEST_CASE("accuracy: bad inputs", "[metrics][errors]") {
  const Tensor x = Tensor::zeros({4, 3});
  const auto model = linear_model(Tensor::ones({2, 3}));
  expect_error(
      [&] {
        gm::accuracy(model, x, std::vector<ga::index_t>{0, 1, 0});
      },
      "3 labels for 4 rows");
  expect_error(
      [&] {
        gm::argmax_accuracy(Tensor::zeros({4, 2}), ga::Indices({0, 1}));
      },
      "2 labels for 4 rows");
  expect_error(
      [&] {
        gm::accuracy(model, x, std::vector<ga::index_t>{0, 1, 2, 0});
      },
      "label 2 of row 2 outside [0, 2)");
  expect_error(
      [&] {
        gm::accuracy(model, x, std::vector<ga::index_t>{0, 1, 0, 0}, 0);
      },
      "batch must be at least 1");
  expect_error(
      [&] {
        gm::sign_accuracy(Tensor::zeros({3}), Tensor::from({3}, {1, 0, -1}));
      },
      "targets must be -1 or 1, entry 1 is 0");
  expect_error(
      [&] {
        gm::sign_accuracy(Tensor::zeros({3, 2}), Tensor::ones({3}));
      },
      "outputs must be [N] or [N, 1]");
  expect_error(
      [&] {
        gm::sigmoid_accuracy(Tensor::zeros({2}), Tensor::from({2}, {1, -1}));
      },
      "labels must be 0 or 1");
  expect_error([&] { gm::sigmoid_accuracy(Tensor::zeros({2}), Tensor::ones({3})); },
               "3 labels for 2 rows");
  ga::Generator gen(0);
  const Tensor t = Tensor::ones({4});
  const auto first = first_coordinate_model();
  expect_error([&] { gm::noisy_sign_accuracy(first, x, t, {.sigma = std::nan("")}, gen); },
               "sigma must be finite");
  expect_error([&] { gm::noisy_sign_accuracy(first, x, t, {.sigma = -1.0}, gen); }, "sigma");
  expect_error(
      [&] { gm::noisy_sign_accuracy(first, x, t, {.sigma = 1.0, .begin = 2, .end = 4}, gen); },
      "noise coordinates [2, 4) outside the 3 coordinates");
  expect_error(
      [&] {
        gm::accuracy(model, Tensor::zeros({0, 3}), std::vector<ga::index_t>{});
      },
      "at least one row");
}
