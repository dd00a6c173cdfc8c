// The grokking transformer: attention against a direct loop with the causal mask, the
// reference's parameter names and shapes, the p = 113 model end to end, the embedding map
// GrokAlign is taken on, and derivatives of every order in inputs and parameters.
#include "nn_check.hpp"

using namespace grokalign;
using namespace nn_check;
using Catch::Contains;

namespace {

nn::TransformerConfig tiny_config() {
  return {.p = 4, .d_model = 4, .n_heads = 2, .d_head = 3, .d_mlp = 6, .n_ctx = 3};
}

// Multi-head causal attention written out index by index from its definition.
Td naive_attention(const nn::Attention<double>& attn, const Td& x, index_t H, index_t dh) {
  const index_t B = x.dim(0), n = x.dim(1), D = x.dim(2);
  const Td WQ = attn.W_Q().value(), WK = attn.W_K().value(), WV = attn.W_V().value(),
           WO = attn.W_O().value();
  Td out = Td::zeros(Shape{B, n, D});
  for (index_t b = 0; b < B; ++b) {
    Td z = Td::zeros(Shape{n, H * dh});  // heads concatenated head-major
    for (index_t h = 0; h < H; ++h) {
      auto project = [&](const Td& W, index_t p, index_t j) {
        double s = 0;
        for (index_t d = 0; d < D; ++d) s += W.at(h, j, d) * x.at(b, p, d);
        return s;
      };
      for (index_t q = 0; q < n; ++q) {
        std::vector<double> score(q + 1);  // keys 0..q only: the causal mask
        double top = -1e300;
        for (index_t k = 0; k <= q; ++k) {
          double s = 0;
          for (index_t j = 0; j < dh; ++j) s += project(WQ, q, j) * project(WK, k, j);
          score[k] = s / std::sqrt(double(dh));
          top = std::max(top, score[k]);
        }
        double total = 0;
        for (double& s : score) total += (s = std::exp(s - top));
        for (index_t j = 0; j < dh; ++j) {
          double acc = 0;
          for (index_t k = 0; k <= q; ++k) acc += score[k] / total * project(WV, k, j);
          z.at(q, h * dh + j) = acc;
        }
      }
    }
    for (index_t q = 0; q < n; ++q)
      for (index_t m = 0; m < D; ++m) {
        double acc = 0;
        for (index_t f = 0; f < H * dh; ++f) acc += WO.at(m, f) * z.at(q, f);
        out.at(b, q, m) = acc;
      }
  }
  return out;
}

Indices random_tokens(index_t B, index_t p, Generator& gen) {
  std::vector<index_t> ids;
  for (index_t b = 0; b < B; ++b) {
    ids.push_back(static_cast<index_t>(gen.below(p)));
    ids.push_back(static_cast<index_t>(gen.below(p)));
    ids.push_back(p);  // "="
  }
  return Indices(ids, Shape{B, 3});
}

}  // namespace

TEST_CASE("nn: causal multi-head attention matches a direct loop", "[nn]") {
  Generator gen(21);
  nn::Attention<double> attn(5, 2, 3, gen);
  const Td x = normal(Shape{2, 4, 5}, gen);
  require_close(attn(x), naive_attention(attn, x, 2, 3), 1e-12);

  const Td pattern = attn.pattern(x);
  REQUIRE(pattern.shape() == Shape{2, 2, 4, 4});
  for (index_t b = 0; b < 2; ++b)
    for (index_t h = 0; h < 2; ++h)
      for (index_t q = 0; q < 4; ++q) {
        double row = 0;
        for (index_t k = 0; k < 4; ++k) {
          if (k > q) CHECK(pattern.at(b, h, q, k) == 0.0);
          row += pattern.at(b, h, q, k);
        }
        CHECK(row == Approx(1.0).epsilon(1e-12));
      }
  CHECK_THROWS_WITH(attn(Td::zeros(Shape{2, 4, 6})), Contains("Attention"));
}

TEST_CASE("nn: the transformer has the reference's parameter names, shapes and init", "[nn]") {
  Generator gen(22);
  const nn::TransformerConfig cfg{.p = 7, .d_model = 8, .n_heads = 2, .d_head = 4, .d_mlp = 16};
  nn::Transformer<double> model(cfg, gen);
  const std::vector<std::string> names{
      "embed.W_E",          "pos_embed.W_pos",    "blocks.0.attn.W_K", "blocks.0.attn.W_Q",
      "blocks.0.attn.W_V",  "blocks.0.attn.W_O",  "blocks.0.mlp.W_in", "blocks.0.mlp.b_in",
      "blocks.0.mlp.W_out", "blocks.0.mlp.b_out", "unembed.W_U"};
  CHECK(model.parameter_names() == names);
  const std::vector<Shape> shapes{{8, 8},  {3, 8}, {2, 4, 8}, {2, 4, 8}, {2, 4, 8}, {8, 8},
                                  {16, 8}, {16},   {8, 16},   {8},       {8, 8}};
  const auto named = model.named_parameters();
  for (std::size_t i = 0; i < names.size(); ++i) {
    INFO(names[i]);
    CHECK(named[i].second.shape() == shapes[i]);
  }
  require_close(model.block(0).mlp().b_in().value(), Td::zeros(Shape{16}));
  CHECK(model.embedding().W_E().same_as(model.parameter("embed.W_E")));

  nn::Transformer<double> deep({.p = 3,
                                .d_model = 4,
                                .n_heads = 1,
                                .d_head = 2,
                                .d_mlp = 4,
                                .n_ctx = 3,
                                .freeze_embedding = false,
                                .n_layers = 2},
                               gen);
  CHECK(deep.has_parameter("blocks.1.mlp.b_out"));
  CHECK(deep.parameter_names().size() == 2 + 8 * 2 + 1);
}

TEST_CASE("nn: the p = 113 transformer gives [B, 3, 114] logits and trains end to end", "[nn]") {
  Generator gen(23);
  auto model = nn::make_transformer<double>({}, gen);
  CHECK(model.config().d_vocab() == 114);
  const Indices tokens = random_tokens(6, 113, gen);
  const Vd logits = model(tokens);
  REQUIRE(logits.shape() == Shape{6, 3, 114});

  // The map GrokAlign is taken on: from_embedding(embed(tokens)) = logits[:, -1, :].
  const Vd e = model.embed(tokens);
  CHECK(e.shape() == Shape{6, 3, 128});
  const Vd last = model.from_embedding(e);
  REQUIRE(last.shape() == Shape{6, 114});
  require_close(last.value(), narrow(logits, 1, 2, 1).value().reshape(Shape{6, 114}), 1e-12);
  // The same numbers without a graph.
  require_close(model.from_embedding(model.embed<Td>(tokens)), last.value(), 1e-12);
  require_close(model.forward(model.embed<Td>(tokens)), logits.value(), 1e-12);
  // Token embeddings are rows of W_E, and one-hot rows through Embed's forward agree.
  require_close(Td(e.value().rows(0, 1).reshape(Shape{3, 128})).rows(2, 1),
                model.embedding().W_E().value().rows(113, 1).reshape(Shape{1, 128}));
  require_close(model.embedding()(Tensor<double>(one_hot<double>(Indices({113}), 114))),
                model.embedding().W_E().value().rows(113, 1), 1e-12);

  std::vector<index_t> answers;
  for (index_t b = 0; b < 6; ++b) answers.push_back((tokens[3 * b] + tokens[3 * b + 1]) % 113);
  const Vd loss = cross_entropy(last, Indices(answers));
  loss.backward();
  for (const auto& [name, p] : model.named_parameters()) {
    INFO(name);
    REQUIRE(p.grad().defined());
    CHECK(p.grad().shape() == p.shape());
    CHECK(p.grad().array().abs().maxCoeff() > 0);
  }

  CHECK_THROWS_WITH(model(Indices({1, 2, 113, 0}, Shape{1, 4})), Contains("n <= 3"));
  CHECK_THROWS_AS(model(Indices({1, 2, 114}, Shape{1, 3})), ShapeError);
}

TEST_CASE("nn: a frozen transformer embedding stays out of training", "[nn]") {
  Generator gen(24);
  nn::TransformerConfig cfg = tiny_config();
  cfg.freeze_embedding = true;
  auto model = nn::make_transformer<double>(cfg, gen);
  const auto trainable = model.trainable_parameters();
  CHECK(trainable.size() == model.parameters().size() - 1);
  for (const auto& p : trainable) CHECK_FALSE(p.same_as(model.parameter("embed.W_E")));
  sum(model(random_tokens(3, 4, gen))).backward();
  CHECK_FALSE(model.parameter("embed.W_E").grad().defined());
  CHECK(model.parameter("pos_embed.W_pos").grad().defined());
}

TEST_CASE("nn: transformer derivatives pass the harness and parameter checks", "[nn]") {
  Generator gen(25);
  auto model = nn::make_transformer<double>(tiny_config(), gen);
  const Td e = normal(Shape{2, 3, 4}, gen);
  // In the embedding: values in every mode, VJP, JVP and the second-order compositions.
  require_gradcheck([&](const auto& xs) { return model.from_embedding(xs[0]); }, {e});
  require_gradcheck([&](const auto& xs) { return model(xs[0]); }, {e});

  // In every parameter: the task loss, the GrokAlign penalty's |J^T v|^2 (reverse over
  // reverse) and <w, J u> (reverse over forward), all on the map from embeddings.
  const Indices tokens = random_tokens(2, 4, gen);
  const Td v = normal(Shape{2, 5}, gen), u = normal(e.shape(), gen), w = normal(Shape{2, 5}, gen);
  require_parameter_gradients(
      model,
      [&] {
        return cross_entropy(model.from_embedding(model.embed(tokens)), Indices({1, 3}));
      },
      [&] {
        return cross_entropy(model.from_embedding(model.embed<Td>(tokens)), Indices({1, 3})).item();
      });
  auto jtv = [&](bool create_graph) {
    const Vd ev(e, true);
    const Vd g =
        grad<double>({model.from_embedding(ev)}, {ev}, {Vd(v)}, {.create_graph = create_graph})[0];
    return sum(g * g);
  };
  require_parameter_gradients(
      model, [&] { return jtv(true); }, [&] { return jtv(false).item(); });
  require_parameter_gradients(
      model, [&] { return sum(model.from_embedding(DV(Vd(e), Vd(u))).tangent() * Vd(w)); },
      [&] { return dot(model.from_embedding(DT(e, u)).tangent(), w); });
}
