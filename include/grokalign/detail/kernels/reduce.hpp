#pragma once
// Sum reductions: over everything, over chosen axes, and back to a broadcast source shape.
#include <vector>

#include "grokalign/detail/kernels/elementwise.hpp"

namespace grokalign::kernels {

template <class T>
Tensor<T> sum_all(const Tensor<T>& x) {
  // Eigen's redux is vectorised; accumulate in the tensor's own type like PyTorch.
  return Tensor<T>::scalar(x.numel() ? x.array().sum() : T(0));
}

// Sums one axis of a tensor viewed as [outer, n, inner]; keeps the axis with extent 1.
template <class T>
Tensor<T> sum_axis_keepdim(const Tensor<T>& x, int axis) {
  const Shape& s = x.shape();
  const index_t outer = s.prod(0, axis), n = s[axis], inner = s.prod(axis + 1, s.rank());
  Shape os = s;
  os[axis] = 1;
  Tensor<T> out = Tensor<T>::zeros(os);
  const T* px = x.data();
  T* po = out.data();
  if (inner == 1) {
    parallel_for(outer, [&](index_t o) {
      po[o] = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(px + o * n, n).sum();
    });
    return out;
  }
  for (index_t o = 0; o < outer; ++o) {
    Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> acc(po + o * inner, inner);
    for (index_t k = 0; k < n; ++k)
      acc += Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(px + (o * n + k) * inner, inner);
  }
  return out;
}

// Sums the axes flagged in `reduce` (one flag per axis of x), keeping them as extent 1.
template <class T>
Tensor<T> sum_axes_keepdim(const Tensor<T>& x, const bool* reduce) {
  Tensor<T> cur = x;
  bool any = false;
  for (int a = x.rank() - 1; a >= 0; --a) {
    if (!reduce[a] || x.shape()[a] == 1) continue;
    cur = sum_axis_keepdim(cur, a);
    any = true;
  }
  return any ? cur : x.clone();
}

// Reduces `x` to `shape`, the shape it was broadcast from (the adjoint of broadcast_to).
template <class T>
Tensor<T> sum_to(const Tensor<T>& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  if (!broadcastable_to(shape, x.shape()))
    detail::throw_shape(
        "sum_to", "shape " + x.shape().to_string() + " cannot be reduced to " + shape.to_string());
  if (shape.numel() == 1) return sum_all(x).reshape(shape);
  bool reduce[Shape::kMaxRank] = {};
  const int off = x.rank() - shape.rank();
  for (int a = 0; a < x.rank(); ++a) reduce[a] = a < off || shape[a - off] == 1;
  return sum_axes_keepdim(x, reduce).reshape(shape);
}

}  // namespace grokalign::kernels
