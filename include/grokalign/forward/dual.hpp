#pragma once
// Dual<X>: a primal value and its tangent, for forward mode. X is Tensor<T> (plain forward
// mode) or Var<T> (the tangent computation is recorded, so a JVP can be differentiated
// again: reverse-over-forward). An undefined tangent is a symbolic zero and costs nothing.
#include <utility>

#include "grokalign/core/tensor.hpp"

namespace grokalign {

template <class X>
class Dual {
 public:
  using value_type = typename X::value_type;
  using primal_type = X;

  Dual() = default;
  // Implicit on purpose: a primal converts to a dual with a zero tangent.
  Dual(X primal, X tangent = X())  // NOLINT
      : primal_(std::move(primal)), tangent_(std::move(tangent)) {
    if (tangent_.defined() && !(tangent_.shape() == primal_.shape()))
      detail::throw_shape("Dual", "tangent of shape " + tangent_.shape().to_string() +
                                      " for a primal of shape " + primal_.shape().to_string());
  }

  const X& primal() const noexcept { return primal_; }
  const X& tangent() const noexcept { return tangent_; }
  bool defined() const noexcept { return primal_.defined(); }
  const Shape& shape() const { return primal_.shape(); }
  int rank() const { return primal_.rank(); }
  index_t numel() const { return primal_.numel(); }
  index_t dim(int axis) const { return primal_.dim(axis); }

 private:
  X primal_;
  X tangent_;
};

}  // namespace grokalign
