#pragma once
// Losses (PyTorch's reductions) and per-row norms, composed from primitives so that every
// derivative order comes from the primitives' rules.
#include <span>
#include <string>
#include <vector>

#include "grokalign/ops/activation.hpp"

namespace grokalign {

namespace detail {
inline void check_same_shape(const Shape& a, const Shape& b, const char* op) {
  if (!(a == b))
    throw_shape(op, "prediction of shape " + a.to_string() + " and target of shape " +
                        b.to_string() + " differ");
}
}  // namespace detail

// Mean over all entries of (prediction - target)^2 (torch.nn.functional.mse_loss).
template <Differentiable X>
X mse(const X& prediction, const X& target) {
  detail::check_same_shape(prediction.shape(), target.shape(), "mse");
  return mean(square(prediction - target));
}
template <Differentiable X>
requires(!is_tensor<X>::value)  // for plain tensors the overload above already applies
    X mse(const X& prediction, const Tensor<scalar_of<X>>& target) {
  return mse(prediction, constant_like(prediction, target));
}

namespace detail {
// The labels an Indices holds, as a span (empty for a default-constructed Indices).
inline std::span<const index_t> label_span(const Indices& labels) {
  if (!labels.values) return {};
  return {labels.values->data(), static_cast<std::size_t>(labels.size())};
}
}  // namespace detail

// One-hot rows [n, classes] for class indices: an Indices, or any contiguous run of index_t
// such as the std::vector<index_t> that BatchIterator::labels() hands out (no copy is made).
template <Scalar T>
Tensor<T> one_hot(std::span<const index_t> labels, index_t classes) {
  const auto n = static_cast<index_t>(labels.size());
  Tensor<T> out = Tensor<T>::zeros(Shape{n, classes});
  for (index_t i = 0; i < n; ++i) {
    const index_t c = labels[i];
    if (c < 0 || c >= classes)
      detail::throw_shape("one_hot", "label " + std::to_string(c) + " outside [0, " +
                                         std::to_string(classes) + ")");
    out.data()[i * classes + c] = T(1);
  }
  return out;
}
template <Scalar T>
Tensor<T> one_hot(const Indices& labels, index_t classes) {
  return one_hot<T>(detail::label_span(labels), classes);
}

// Cross-entropy from logits [B, C] against target probabilities [B, C] (one-hot rows for
// hard labels), averaged over the batch. log_softmax keeps it finite for large logits.
template <Differentiable X>
X cross_entropy(const X& logits, const Tensor<scalar_of<X>>& target_probs) {
  using T = scalar_of<X>;
  if (logits.rank() != 2)
    detail::throw_shape("cross_entropy",
                        "logits must be [batch, classes], got " + logits.shape().to_string());
  detail::check_same_shape(logits.shape(), target_probs.shape(), "cross_entropy");
  return sum(mul_const(log_softmax(logits, -1), target_probs)) *
         (T(-1) / static_cast<T>(logits.shape()[0]));
}
// Cross-entropy from logits [B, C] against class indices: an Indices, or the
// std::vector<index_t> of BatchIterator::labels() (taken as a span: nothing is copied, so a
// training step `cross_entropy(model(x), batches.labels())` allocates no label buffer).
template <Differentiable X>
X cross_entropy(const X& logits, std::span<const index_t> labels) {
  const auto n = static_cast<index_t>(labels.size());
  if (logits.rank() != 2 || n != logits.shape()[0])
    detail::throw_shape("cross_entropy", "logits of shape " + logits.shape().to_string() + " for " +
                                             std::to_string(n) + " labels");
  // Checked here rather than left to one_hot, so that the message names the call the user
  // wrote and the offending sample.
  const index_t classes = logits.shape()[1];
  for (index_t i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= classes)
      detail::throw_shape("cross_entropy", "label " + std::to_string(labels[i]) + " of sample " +
                                               std::to_string(i) + " is outside [0, " +
                                               std::to_string(classes) + ") for logits of shape " +
                                               logits.shape().to_string());
  return cross_entropy(logits, one_hot<scalar_of<X>>(labels, classes));
}
template <Differentiable X>
X cross_entropy(const X& logits, const Indices& labels) {
  return cross_entropy(logits, detail::label_span(labels));
}

// Mean of softplus(z) - y z: binary cross-entropy on logits, stable for any z.
template <Differentiable X>
X bce_with_logits(const X& logits, const Tensor<scalar_of<X>>& targets) {
  detail::check_same_shape(logits.shape(), targets.shape(), "bce_with_logits");
  return mean(softplus(logits) - mul_const(logits, targets));
}

namespace rules {

// sum(x^2) over the last axis as one primitive: the GrokAlign penalty applies it to the
// [B, d] input cotangent, where the composite sum(x * x) would make four extra passes
// (the product, a broadcast of the cotangent, two products and their sum) in backward.
template <Scalar T>
struct RowSqNorm : RuleBase {
  static constexpr const char* kName = "row_sq_norm";
  struct Params {};
  static Tensor<T> forward(const Params&, const Tensor<T>* in) {
    const Tensor<T>& x = in[0];
    if (x.rank() < 1) detail::throw_shape(kName, "input must have at least one axis");
    Shape out;
    for (int i = 0; i + 1 < x.rank(); ++i) out.push_back(x.shape()[i]);
    Tensor<T> r = Tensor<T>::empty(out);
    const auto m = x.matrix();
    for (index_t i = 0; i < m.rows(); ++i) r.data()[i] = m.row(i).squaredNorm();
    return r;
  }
  static Shape keep_shape(const Shape& s) {
    Shape keep = s;
    keep[s.rank() - 1] = 1;
    return keep;
  }
  template <class X>
  static X jvp(const Params&, const X* t, const X* in, const X&) {
    return sum(in[0] * t[0], {-1}) * T(2);
  }
  template <class X>
  static void vjp(const Params&, const X& gy, const X* in, const X&, const bool*, X* gx) {
    gx[0] = in[0] * (reshape(gy, keep_shape(in[0].shape())) * T(2));
  }
};

}  // namespace rules

// Squared Euclidean norm of each row (over the last axis): [..., n] -> [...].
template <Differentiable X>
X row_sq_norm(const X& x) {
  return apply_op<rules::RowSqNorm<scalar_of<X>>>({}, std::array<X, 1>{x});
}
// Euclidean norm of each row. Its derivative is undefined at a zero row (as for torch.norm).
template <Differentiable X>
X row_norm(const X& x) {
  return sqrt(row_sq_norm(x));
}

}  // namespace grokalign
