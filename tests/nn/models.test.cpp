// The paper's models: the bias-free MNIST MLP (structure, and that it trains at init scale
// 8), the delayed-robustness CNN on 28x28x1 and 32x32x3 batches, and make_transformer.
#include "nn_check.hpp"

using namespace grokalign;
using namespace nn_check;
using Catch::Contains;

namespace {

// Adam (bias-corrected, eps 1e-8), written out so these tests do not depend on optim/.
struct TinyAdam {
  std::vector<Vd> params;
  double lr, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  std::vector<Td> m, v;
  int t = 0;

  TinyAdam(std::vector<Vd> ps, double learning_rate) : params(std::move(ps)), lr(learning_rate) {
    for (const auto& p : params) {
      m.push_back(Td::zeros(p.shape()));
      v.push_back(Td::zeros(p.shape()));
    }
  }
  void step() {
    ++t;
    const double c1 = 1 - std::pow(b1, t), c2 = 1 - std::pow(b2, t);
    for (std::size_t i = 0; i < params.size(); ++i) {
      const Td& g = params[i].grad();
      m[i].array() = b1 * m[i].array() + (1 - b1) * g.array();
      v[i].array() = b2 * v[i].array() + (1 - b2) * g.array().square();
      Td w = params[i].value().clone();
      w.array() -= lr * (m[i].array() / c1) / ((v[i].array() / c2).sqrt() + eps);
      params[i].assign(w);
    }
  }
};

Indices argmax_rows(const Td& logits) {
  std::vector<index_t> labels;
  const auto m = logits.matrix();
  for (index_t r = 0; r < m.rows(); ++r) {
    index_t best;
    m.row(r).maxCoeff(&best);
    labels.push_back(best);
  }
  return Indices(labels);
}

void check_cnn(index_t channels, index_t size, Generator& gen) {
  auto cnn = nn::make_cnn<double>(channels, size, 10, gen);
  const std::vector<std::pair<std::string, Shape>> want{
      {"0.weight", {32, channels, 3, 3}}, {"2.weight", {32, 32, 3, 3}},
      {"4.weight", {64, 32, 3, 3}},       {"6.weight", {64, 64, 3, 3}},
      {"8.weight", {128, 64, 3, 3}},      {"10.weight", {128, 128, 3, 3}},
      {"15.weight", {128, 128}},          {"17.weight", {10, 128}}};
  const auto named = cnn.named_parameters();
  REQUIRE(named.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    CHECK(named[i].first == want[i].first);
    CHECK(named[i].second.shape() == want[i].second);
  }
  // Kaiming normal, fan_out: the 128x128 layer has variance 2 / 128.
  const Td w15 = cnn.parameter("15.weight").value();
  CHECK(w15.array().square().mean() == Approx(2.0 / 128).epsilon(0.05));

  const Td x = normal(Shape{2, channels, size, size}, gen);
  const Vd out = cnn(Vd(x));
  REQUIRE(out.shape() == Shape{2, 10});
  Td onehot = Td::zeros(Shape{2, 10});
  onehot.at(0, 3) = onehot.at(1, 7) = 1;
  mse(out, onehot).backward();
  for (const auto& [name, p] : named) {
    INFO(name);
    REQUIRE(p.grad().defined());
    CHECK(p.grad().shape() == p.shape());
  }
  // The input gradient (what centroids and attacks use) has the image's shape.
  const Vd xv(x, true);
  const Vd gx = grad<double>({sum(cnn(xv))}, {xv})[0];
  CHECK(gx.shape() == x.shape());
}

}  // namespace

TEST_CASE("nn: make_mlp builds the paper's bias-free MLP", "[nn]") {
  Generator gen(31);
  auto mlp = nn::make_mlp<double>(784, 196, 4, 10, false, gen);
  CHECK(mlp.size() == 7);
  CHECK(mlp.parameter_names() ==
        std::vector<std::string>{"0.weight", "2.weight", "4.weight", "6.weight"});
  CHECK(mlp.parameter("0.weight").shape() == Shape{196, 784});
  CHECK(mlp.parameter("2.weight").shape() == Shape{196, 196});
  CHECK(mlp.parameter("4.weight").shape() == Shape{196, 196});
  CHECK(mlp.parameter("6.weight").shape() == Shape{10, 196});
  CHECK(mlp.num_parameters() == 784 * 196 + 2 * 196 * 196 + 196 * 10);
  CHECK(mlp.parameter("0.weight").value().array().abs().maxCoeff() <= 1 / 28.0);

  auto biased = nn::make_mlp<double>(3, 5, 2, 1, true, gen);
  CHECK(biased.parameter_names() ==
        std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
  CHECK(nn::make_mlp<double>(3, 5, 1, 2, false, gen).parameter("0.weight").shape() == Shape{2, 3});
  CHECK_THROWS_WITH(nn::make_mlp<double>(3, 5, 0, 2, false, gen), Contains("depth"));
}

TEST_CASE("nn: a 784-196-196-196-10 MLP at init scale 8 learns a random teacher", "[nn]") {
  Generator gen(32);
  const index_t n = 256;
  const Td x = normal(Shape{n, 784}, gen);
  auto teacher = nn::make_mlp<double>(784, 64, 2, 10, true, gen);
  const Indices labels = argmax_rows(teacher(x));
  const Td targets = one_hot<double>(labels, 10);

  auto student = nn::make_mlp<double>(784, 196, 4, 10, false, gen);
  nn::scale_parameters(student, 8.0);
  TinyAdam adam(student.trainable_parameters(), 1e-3);
  std::vector<double> losses;
  for (int step = 0; step < 30; ++step) {
    student.zero_grad();
    const Vd loss = mse(student(Vd(x)), targets);
    loss.backward();
    adam.step();
    losses.push_back(loss.item());
  }
  const double final_loss = mse(student(x), targets).item();
  INFO("initial loss " << losses.front() << ", final loss " << final_loss);
  CHECK(std::isfinite(final_loss));
  CHECK(final_loss < 0.2 * losses.front());
  CHECK(losses[20] < losses[10]);
}

TEST_CASE("nn: the delayed-robustness CNN runs on 28x28x1 and 32x32x3 batches", "[nn]") {
  Generator gen(33);
  check_cnn(1, 28, gen);
  check_cnn(3, 32, gen);
  auto narrow_cnn = nn::make_cnn<double>(3, 32, 5, gen, 4);
  CHECK(narrow_cnn.parameter("15.weight").shape() == Shape{128, 16});
  CHECK(narrow_cnn(Td::zeros(Shape{1, 3, 32, 32})).shape() == Shape{1, 5});
  CHECK_THROWS_WITH(nn::make_cnn<double>(1, 8, 10, gen), Contains("make_cnn"));
}

TEST_CASE("nn: the models build and differentiate in float", "[nn]") {
  Generator gen(34);
  using Tf = Tensor<float>;
  using Vf = Var<float>;
  auto mlp = nn::make_mlp<float>(6, 5, 3, 2, true, gen);
  nn::scale_parameters(mlp, 2.0);
  CHECK(mlp(randn<float>(Shape{4, 6}, gen)).shape() == Shape{4, 2});

  auto cnn = nn::make_cnn<float>(1, 28, 10, gen, 2);
  const Vf out = cnn(Vf(randn<float>(Shape{1, 1, 28, 28}, gen)));
  CHECK(out.shape() == Shape{1, 10});
  sum(out).backward();
  CHECK(cnn.parameter("0.weight").grad().defined());

  auto model = nn::make_transformer<float>(
      {.p = 5, .d_model = 4, .n_heads = 2, .d_head = 2, .d_mlp = 8}, gen);
  const Indices tokens({0, 4, 5, 3, 1, 5}, Shape{2, 3});
  const Dual<Tf> jvp =
      model.from_embedding(Dual<Tf>(model.embed<Tf>(tokens), randn<float>(Shape{2, 3, 4}, gen)));
  CHECK(jvp.tangent().shape() == Shape{2, 6});
  cross_entropy(model.from_embedding(model.embed(tokens)), Indices({4, 4})).backward();
  CHECK(model.parameter("unembed.W_U").grad().defined());
}
