#pragma once
// Sums and means, over everything or over chosen axes. They are sum_to in disguise (the
// reduced shape is one the input broadcasts from), so they share its derivatives.
#include <initializer_list>

#include "grokalign/ops/layout.hpp"

namespace grokalign {

namespace detail {
// The input shape with the given axes set to 1, and the shape without them.
inline void reduced_shapes(const Shape& s, std::initializer_list<int> axes, Shape& keep,
                           Shape& drop, const char* op) {
  bool reduce[Shape::kMaxRank] = {};
  for (int a : axes) reduce[s.normalize_axis(a, op)] = true;
  keep = Shape();
  drop = Shape();
  for (int i = 0; i < s.rank(); ++i) {
    keep.push_back(reduce[i] ? 1 : s[i]);
    if (!reduce[i]) drop.push_back(s[i]);
  }
}
}  // namespace detail

// Sum of all elements (a rank-0 result).
template <Differentiable X>
X sum(const X& x) {
  return sum_to(x, Shape{});
}
template <Differentiable X>
X sum(const X& x, std::initializer_list<int> axes, bool keepdim = false) {
  Shape keep, drop;
  detail::reduced_shapes(x.shape(), axes, keep, drop, "sum");
  X s = sum_to(x, keep);
  return keepdim ? s : reshape(s, drop);
}
template <Differentiable X>
X mean(const X& x) {
  if (x.numel() == 0) detail::throw_shape("mean", "mean of an empty tensor");
  return sum(x) * (scalar_of<X>(1) / static_cast<scalar_of<X>>(x.numel()));
}
template <Differentiable X>
X mean(const X& x, std::initializer_list<int> axes, bool keepdim = false) {
  Shape keep, drop;
  detail::reduced_shapes(x.shape(), axes, keep, drop, "mean");
  const index_t n = x.numel() / (keep.numel() ? keep.numel() : 1);
  if (n == 0) detail::throw_shape("mean", "mean over empty axes of " + x.shape().to_string());
  return sum(x, axes, keepdim) * (scalar_of<X>(1) / static_cast<scalar_of<X>>(n));
}

}  // namespace grokalign
