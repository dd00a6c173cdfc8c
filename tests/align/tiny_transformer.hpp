#pragma once
// A tiny modular-addition transformer and embedded inputs for its sub-map (token embeddings
// -> last-position logits), the map the paper aligns; shared by the align tests.
#include <grokalign/nn.hpp>
#include <vector>

namespace grokalign_test {

struct TinyTransformer {
  grokalign::Generator gen{21};
  grokalign::nn::Transformer<double> model = grokalign::nn::make_transformer<double>(
      {.p = 5, .d_model = 6, .n_heads = 2, .d_head = 3, .d_mlp = 8, .n_ctx = 3}, gen);
  grokalign::Tensor<double> embedded = model.embed<grokalign::Tensor<double>>(
      grokalign::Indices({0, 1, 5, 3, 4, 5}, grokalign::Shape{2, 3}));
  auto sub_map() const {
    return [this](const auto& e) { return model.from_embedding(e); };
  }
  // W_E is not used by the sub-map (it starts from embeddings): only the others count.
  std::vector<grokalign::Var<double>> sub_map_parameters() const {
    std::vector<grokalign::Var<double>> used;
    for (const auto& [name, p] : model.named_parameters())
      if (name != "embed.W_E") used.push_back(p);
    return used;
  }
};

}  // namespace grokalign_test
