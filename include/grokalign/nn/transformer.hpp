#pragma once
// The one-layer transformer of the grokking experiments (Nanda et al., "Progress measures
// for grokking via mechanistic interpretability"), as GrokAlign's transformer_alignment
// run uses it: no LayerNorm, learned positions, causal multi-head attention, a ReLU MLP,
// residual connections, and an unembedding.
//
//   e      = W_E[tokens]                                   [B, n, d_model]  (embed)
//   x      = e + W_pos[:n]
//   x      = x + attn(x);  x = x + mlp(x)                  (per block)
//   logits = x W_U                                         [B, n, d_vocab]
//
// The map GrokAlign and centroids are taken on starts at the token embedding e, before
// the positions are added (the reference differentiates unembed(block(pos_embed(e)))[:, -1]
// in e): from_embedding(e) returns those last-position logits [B, d_vocab].
//
// Parameter names and shapes are the reference's: embed.W_E [d_vocab, d_model],
// pos_embed.W_pos [n_ctx, d_model], blocks.<i>.attn.W_K / W_Q / W_V [n_heads, d_head,
// d_model], blocks.<i>.attn.W_O [d_model, n_heads * d_head] (columns head-major:
// head * d_head + j), blocks.<i>.mlp.W_in [d_mlp, d_model], b_in [d_mlp], W_out [d_model,
// d_mlp], b_out [d_model], unembed.W_U [d_model, d_vocab].
//
// Initialisation follows the reference: every weight N(0, 1/d_model) except W_U, which is
// N(0, 1/d_vocab); the MLP biases start at zero. Draws happen in parameter order.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "grokalign/nn/init.hpp"
#include "grokalign/nn/module.hpp"
#include "grokalign/nn/sequential.hpp"
#include "grokalign/ops/activation.hpp"
#include "grokalign/ops/layout.hpp"
#include "grokalign/ops/matmul.hpp"

namespace grokalign::nn {

struct TransformerConfig {
  index_t p = 113;  // modulus: tokens are 0..p-1 and "=" (p), so d_vocab = p + 1
  index_t d_model = 128;
  index_t n_heads = 4;
  index_t d_head = 32;
  index_t d_mlp = 512;
  index_t n_ctx = 3;
  bool freeze_embedding = false;  // keep embed.W_E at its initial value
  index_t n_layers = 1;

  index_t d_vocab() const noexcept { return p + 1; }
};

namespace internal {
inline void require_positive(index_t v, const char* what, const char* op) {
  if (v < 1)
    grokalign::detail::throw_shape(
        op, std::string(what) + " must be positive, got " + std::to_string(v));
}
// A residual stream [B, n, d_model] with 1 <= n <= max_ctx (no limit when max_ctx is 0).
template <class X>
void require_residual(const X& x, index_t d_model, index_t max_ctx, const char* op) {
  const bool ok = x.rank() == 3 && x.dim(2) == d_model && x.dim(1) >= 1 &&
                  (max_ctx == 0 || x.dim(1) <= max_ctx);
  if (!ok)
    grokalign::detail::throw_shape(
        op, "needs a residual stream [B, " +
                (max_ctx ? "n <= " + std::to_string(max_ctx) : std::string("n")) + ", " +
                std::to_string(d_model) + "], got " + x.shape().to_string());
}
inline double inv_sqrt(index_t n) {
  return 1.0 / std::sqrt(static_cast<double>(n));
}
}  // namespace internal

// W_E [d_vocab, d_model]: rows are token embeddings.
template <Scalar T>
class Embed : public ModuleBase<Embed<T>, T> {
 public:
  Embed(index_t d_vocab, index_t d_model, Generator& gen = default_generator())
      : d_vocab_(d_vocab), d_model_(d_model) {
    internal::require_positive(d_vocab, "d_vocab", "Embed");
    internal::require_positive(d_model, "d_model", "Embed");
    W_E_ = this->register_parameter("W_E", Tensor<T>::zeros(Shape{d_vocab, d_model}));
    Embed::reset_parameters(gen);
  }
  // Rows of W_E for token ids of any shape: [...] -> [..., d_model].
  template <class X>
  X lookup(const Indices& tokens) const {
    return index_select(lift<X>(W_E_), tokens);
  }
  // Token distributions [..., d_vocab] (one-hot rows reproduce lookup) -> [..., d_model].
  template <class X>
  X apply(const X& x) const {
    if (x.rank() < 2 || x.dim(-1) != d_vocab_)
      grokalign::detail::throw_shape("Embed", "needs token distributions [..., " +
                                                  std::to_string(d_vocab_) + "], got " +
                                                  x.shape().to_string());
    return matmul(x, lift<X>(W_E_));
  }
  void reset_parameters(Generator& gen) override {
    init::normal_(W_E_, 0.0, internal::inv_sqrt(d_model_), gen);
  }
  Var<T> W_E() const noexcept { return W_E_; }

 private:
  index_t d_vocab_, d_model_;
  Var<T> W_E_;
};

// Adds W_pos[:n] [n, d_model] to a residual stream [B, n, d_model].
template <Scalar T>
class PosEmbed : public ModuleBase<PosEmbed<T>, T> {
 public:
  PosEmbed(index_t n_ctx, index_t d_model, Generator& gen = default_generator())
      : n_ctx_(n_ctx), d_model_(d_model) {
    internal::require_positive(n_ctx, "n_ctx", "PosEmbed");
    internal::require_positive(d_model, "d_model", "PosEmbed");
    W_pos_ = this->register_parameter("W_pos", Tensor<T>::zeros(Shape{n_ctx, d_model}));
    PosEmbed::reset_parameters(gen);
  }
  template <class X>
  X apply(const X& x) const {
    internal::require_residual(x, d_model_, n_ctx_, "PosEmbed");
    const X w = lift<X>(W_pos_);
    return x + (x.dim(1) == n_ctx_ ? w : narrow(w, 0, 0, x.dim(1)));
  }
  void reset_parameters(Generator& gen) override {
    init::normal_(W_pos_, 0.0, internal::inv_sqrt(d_model_), gen);
  }
  Var<T> W_pos() const noexcept { return W_pos_; }

 private:
  index_t n_ctx_, d_model_;
  Var<T> W_pos_;
};

// Causal multi-head self-attention without biases. For head h with q, k, v = W_Q[h] x,
// W_K[h] x, W_V[h] x at each position: scores q.k / sqrt(d_head), keys after the query
// masked out, softmax over keys, z = pattern v; heads are concatenated head-major and
// mapped back by W_O.
template <Scalar T>
class Attention : public ModuleBase<Attention<T>, T> {
 public:
  // Masked scores are set to this before the softmax, as the reference subtracts 1e10: the
  // softmax gives them exactly zero weight, and no infinity reaches the arithmetic.
  static constexpr double kMaskedScore = -1e10;

  Attention(index_t d_model, index_t n_heads, index_t d_head, Generator& gen = default_generator())
      : d_model_(d_model), n_heads_(n_heads), d_head_(d_head) {
    internal::require_positive(d_model, "d_model", "Attention");
    internal::require_positive(n_heads, "n_heads", "Attention");
    internal::require_positive(d_head, "d_head", "Attention");
    const Shape per_head{n_heads, d_head, d_model};
    W_K_ = this->register_parameter("W_K", Tensor<T>::zeros(per_head));
    W_Q_ = this->register_parameter("W_Q", Tensor<T>::zeros(per_head));
    W_V_ = this->register_parameter("W_V", Tensor<T>::zeros(per_head));
    W_O_ = this->register_parameter("W_O", Tensor<T>::zeros(Shape{d_model, n_heads * d_head}));
    Attention::reset_parameters(gen);
  }

  // Attention probabilities [B, n_heads, n (query), n (key)].
  template <class X>
  X pattern(const X& x) const {
    internal::require_residual(x, d_model_, 0, "Attention");
    return pattern_of(project(x, W_Q_), project(x, W_K_));
  }

  template <class X>
  X apply(const X& x) const {
    internal::require_residual(x, d_model_, 0, "Attention");
    const index_t B = x.dim(0), n = x.dim(1);
    const X attn = pattern_of(project(x, W_Q_), project(x, W_K_));
    const X z = permute(matmul(attn, project(x, W_V_)), {0, 2, 1, 3});  // [B, n, H, d_head]
    return matmul(reshape(z, Shape{B, n, n_heads_ * d_head_}), lift<X>(W_O_), false, true);
  }

  void reset_parameters(Generator& gen) override {
    const double s = internal::inv_sqrt(d_model_);
    for (auto* w : {&W_K_, &W_Q_, &W_V_, &W_O_}) init::normal_(*w, 0.0, s, gen);
  }

  // 1 where the key comes after the query (masked), 0 elsewhere: [n, n].
  static Tensor<T> causal_mask(index_t n) {
    Tensor<T> m = Tensor<T>::zeros(Shape{n, n});
    for (index_t q = 0; q < n; ++q)
      for (index_t k = q + 1; k < n; ++k) m.data()[q * n + k] = T(1);
    return m;
  }

  Var<T> W_K() const noexcept { return W_K_; }
  Var<T> W_Q() const noexcept { return W_Q_; }
  Var<T> W_V() const noexcept { return W_V_; }
  Var<T> W_O() const noexcept { return W_O_; }

 private:
  // x [B, n, d_model] and W [H, d_head, d_model] -> [B, H, n, d_head]: all heads in one GEMM.
  template <class X>
  X project(const X& x, const Var<T>& w) const {
    const index_t B = x.dim(0), n = x.dim(1);
    const X flat = reshape(lift<X>(w), Shape{n_heads_ * d_head_, d_model_});
    const X y = matmul(x, flat, false, true);  // [B, n, H * d_head]
    return permute(reshape(y, Shape{B, n, n_heads_, d_head_}), {0, 2, 1, 3});
  }
  template <class X>
  X pattern_of(const X& q, const X& k) const {
    const index_t n = q.dim(2);
    const X scores = matmul(q, k, false, true) * static_cast<T>(internal::inv_sqrt(d_head_));
    return softmax(masked_fill(scores, causal_mask(n), static_cast<T>(kMaskedScore)), -1);
  }

  index_t d_model_, n_heads_, d_head_;
  Var<T> W_K_, W_Q_, W_V_, W_O_;
};

// Position-wise W_out relu(W_in x + b_in) + b_out.
template <Scalar T>
class TransformerMLP : public ModuleBase<TransformerMLP<T>, T> {
 public:
  TransformerMLP(index_t d_model, index_t d_mlp, Generator& gen = default_generator())
      : d_model_(d_model), d_mlp_(d_mlp) {
    internal::require_positive(d_model, "d_model", "TransformerMLP");
    internal::require_positive(d_mlp, "d_mlp", "TransformerMLP");
    W_in_ = this->register_parameter("W_in", Tensor<T>::zeros(Shape{d_mlp, d_model}));
    b_in_ = this->register_parameter("b_in", Tensor<T>::zeros(Shape{d_mlp}));
    W_out_ = this->register_parameter("W_out", Tensor<T>::zeros(Shape{d_model, d_mlp}));
    b_out_ = this->register_parameter("b_out", Tensor<T>::zeros(Shape{d_model}));
    TransformerMLP::reset_parameters(gen);
  }
  template <class X>
  X apply(const X& x) const {
    if (x.rank() < 2 || x.dim(-1) != d_model_)
      grokalign::detail::throw_shape(
          "TransformerMLP",
          "needs inputs [..., " + std::to_string(d_model_) + "], got " + x.shape().to_string());
    const X hidden = relu(linear(x, lift<X>(W_in_), lift<X>(b_in_)));
    return linear(hidden, lift<X>(W_out_), lift<X>(b_out_));
  }
  void reset_parameters(Generator& gen) override {
    const double s = internal::inv_sqrt(d_model_);
    init::normal_(W_in_, 0.0, s, gen);
    init::zeros_(b_in_);
    init::normal_(W_out_, 0.0, s, gen);
    init::zeros_(b_out_);
  }
  Var<T> W_in() const noexcept { return W_in_; }
  Var<T> b_in() const noexcept { return b_in_; }
  Var<T> W_out() const noexcept { return W_out_; }
  Var<T> b_out() const noexcept { return b_out_; }

 private:
  index_t d_model_, d_mlp_;
  Var<T> W_in_, b_in_, W_out_, b_out_;
};

// x + attn(x), then + mlp(.) on the residual stream.
template <Scalar T>
class TransformerBlock : public ModuleBase<TransformerBlock<T>, T> {
 public:
  TransformerBlock(index_t d_model, index_t n_heads, index_t d_head, index_t d_mlp,
                   Generator& gen = default_generator())
      : attn_(this->register_module("attn",
                                    std::make_shared<Attention<T>>(d_model, n_heads, d_head, gen))),
        mlp_(this->register_module("mlp",
                                   std::make_shared<TransformerMLP<T>>(d_model, d_mlp, gen))) {}

  template <class X>
  X apply(const X& x) const {
    const X h = x + attn_->apply(x);
    return h + mlp_->apply(h);
  }
  // The block's output at the last position only, [B, 1, d_model]: attention needs every
  // position, but the MLP is position-wise, so the other positions' MLP work is skipped.
  template <class X>
  X apply_last(const X& x) const {
    const X h = x + attn_->apply(x);
    const X last = narrow(h, 1, h.dim(1) - 1, 1);
    return last + mlp_->apply(last);
  }

  Attention<T>& attn() const noexcept { return *attn_; }
  TransformerMLP<T>& mlp() const noexcept { return *mlp_; }

 private:
  std::shared_ptr<Attention<T>> attn_;
  std::shared_ptr<TransformerMLP<T>> mlp_;
};

// x W_U with W_U [d_model, d_vocab].
template <Scalar T>
class Unembed : public ModuleBase<Unembed<T>, T> {
 public:
  Unembed(index_t d_model, index_t d_vocab, Generator& gen = default_generator())
      : d_model_(d_model), d_vocab_(d_vocab) {
    internal::require_positive(d_model, "d_model", "Unembed");
    internal::require_positive(d_vocab, "d_vocab", "Unembed");
    W_U_ = this->register_parameter("W_U", Tensor<T>::zeros(Shape{d_model, d_vocab}));
    Unembed::reset_parameters(gen);
  }
  template <class X>
  X apply(const X& x) const {
    if (x.rank() < 2 || x.dim(-1) != d_model_)
      grokalign::detail::throw_shape("Unembed", "needs inputs [..., " + std::to_string(d_model_) +
                                                    "], got " + x.shape().to_string());
    return matmul(x, lift<X>(W_U_));
  }
  void reset_parameters(Generator& gen) override {
    init::normal_(W_U_, 0.0, internal::inv_sqrt(d_vocab_), gen);
  }
  Var<T> W_U() const noexcept { return W_U_; }

 private:
  index_t d_model_, d_vocab_;
  Var<T> W_U_;
};

// The whole model. As a Module it maps a token embedding [B, n, d_model] to logits
// [B, n, d_vocab]; forward(tokens) = forward(embed(tokens)).
template <Scalar T>
class Transformer : public ModuleBase<Transformer<T>, T> {
 public:
  using ModuleBase<Transformer<T>, T>::forward;
  using Module<T>::operator();

  explicit Transformer(const TransformerConfig& config, Generator& gen = default_generator())
      : config_(config) {
    internal::require_positive(config.p, "p", "Transformer");
    internal::require_positive(config.n_ctx, "n_ctx", "Transformer");
    internal::require_positive(config.n_layers, "n_layers", "Transformer");
    const index_t V = config.d_vocab(), D = config.d_model;
    embed_ = this->register_module("embed", std::make_shared<Embed<T>>(V, D, gen));
    pos_embed_ =
        this->register_module("pos_embed", std::make_shared<PosEmbed<T>>(config.n_ctx, D, gen));
    blocks_ = this->register_module("blocks", std::make_shared<Sequential<T>>());
    for (index_t i = 0; i < config.n_layers; ++i) {
      block_list_.push_back(std::make_shared<TransformerBlock<T>>(D, config.n_heads, config.d_head,
                                                                  config.d_mlp, gen));
      blocks_->push_back(std::shared_ptr<Module<T>>(block_list_.back()));
    }
    unembed_ = this->register_module("unembed", std::make_shared<Unembed<T>>(D, V, gen));
    if (config.freeze_embedding) this->freeze("embed.W_E");
  }

  // Token embeddings W_E[tokens] [B, n, d_model] for tokens [B, n] (n <= n_ctx), as X
  // (Var by default; Tensor for a graph-free evaluation).
  template <class X = Var<T>>
  X embed(const Indices& tokens) const {
    if (tokens.shape.rank() != 2 || tokens.shape[1] < 1 || tokens.shape[1] > config_.n_ctx)
      grokalign::detail::throw_shape("Transformer::embed",
                                     "tokens must be [B, n <= " + std::to_string(config_.n_ctx) +
                                         "], got " + tokens.shape.to_string());
    return embed_->template lookup<X>(tokens);
  }

  // All logits [B, n, d_vocab] from token embeddings [B, n, d_model].
  template <class X>
  X apply(const X& e) const {
    return unembed_->apply(blocks_->forward(pos_embed_->apply(e)));
  }
  // Last-position logits [B, d_vocab] from token embeddings [B, n, d_model]: the map the
  // GrokAlign penalty and the centroids are taken on.
  template <class X>
  X from_embedding(const X& e) const {
    X x = pos_embed_->apply(e);
    for (std::size_t i = 0; i + 1 < block_list_.size(); ++i) x = block_list_[i]->apply(x);
    x = block_list_.back()->apply_last(x);
    return reshape(unembed_->apply(x), Shape{x.dim(0), config_.d_vocab()});
  }

  // Logits [B, n, d_vocab] for tokens [B, n].
  Var<T> forward(const Indices& tokens) const { return this->forward(embed(tokens)); }
  Var<T> operator()(const Indices& tokens) const { return forward(tokens); }

  const TransformerConfig& config() const noexcept { return config_; }
  Embed<T>& embedding() const noexcept { return *embed_; }
  PosEmbed<T>& positional_embedding() const noexcept { return *pos_embed_; }
  TransformerBlock<T>& block(std::size_t i) const { return *block_list_.at(i); }
  Unembed<T>& unembedding() const noexcept { return *unembed_; }

 private:
  TransformerConfig config_;
  std::shared_ptr<Embed<T>> embed_;
  std::shared_ptr<PosEmbed<T>> pos_embed_;
  std::shared_ptr<Sequential<T>> blocks_;
  std::vector<std::shared_ptr<TransformerBlock<T>>> block_list_;
  std::shared_ptr<Unembed<T>> unembed_;
};

}  // namespace grokalign::nn
