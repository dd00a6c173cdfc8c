#pragma once
// Element-wise kernels on plain tensors, with NumPy broadcasting for binary operations.
#include <cmath>
#include <string>

#include "grokalign/core/tensor.hpp"
#include "grokalign/detail/kernels/parallel.hpp"

namespace grokalign::kernels {

template <class T, class F>
Tensor<T> map(const Tensor<T>& x, F f) {
  Tensor<T> out = Tensor<T>::empty(x.shape());
  const T* src = x.data();
  T* dst = out.data();
  parallel_for(x.numel(), [&](index_t i) { dst[i] = f(src[i]); });
  return out;
}

// Strides (in elements) of `s` aligned right to a shape of rank `r`; 0 where `s` broadcasts.
inline void broadcast_strides(const Shape& s, const Shape& out, index_t* strides) {
  const int r = out.rank(), off = r - s.rank();
  index_t stride = 1;
  for (int i = r - 1; i >= 0; --i) {
    const int j = i - off;
    if (j < 0 || s[j] == 1) {
      strides[i] = 0;
    } else {
      strides[i] = stride;
    }
    if (j >= 0) stride *= s[j];
  }
}

// Calls f(out_index, a_index, b_index) for every element of the broadcast result.
template <class F>
void for_each_broadcast(const Shape& out, const Shape& a, const Shape& b, F&& f) {
  const index_t n = out.numel();
  if (n == 0) return;
  if (a == out && b == out) {
    for (index_t i = 0; i < n; ++i) f(i, i, i);
    return;
  }
  const index_t na = a.numel(), nb = b.numel();
  if (a == out && nb == 1) {
    for (index_t i = 0; i < n; ++i) f(i, i, index_t{0});
    return;
  }
  if (b == out && na == 1) {
    for (index_t i = 0; i < n; ++i) f(i, index_t{0}, i);
    return;
  }
  const int r = out.rank();
  index_t sa[Shape::kMaxRank], sb[Shape::kMaxRank], idx[Shape::kMaxRank] = {};
  broadcast_strides(a, out, sa);
  broadcast_strides(b, out, sb);
  const index_t inner = out[r - 1], ia_step = sa[r - 1], ib_step = sb[r - 1];
  index_t ia = 0, ib = 0;
  for (index_t o = 0; o < n; o += inner) {
    for (index_t k = 0; k < inner; ++k) f(o + k, ia + k * ia_step, ib + k * ib_step);
    // Advance the multi-index over the outer axes.
    for (int d = r - 2; d >= 0; --d) {
      ++idx[d];
      ia += sa[d];
      ib += sb[d];
      if (idx[d] < out[d]) break;
      ia -= sa[d] * out[d];
      ib -= sb[d] * out[d];
      idx[d] = 0;
    }
  }
}

template <class T, class F>
Tensor<T> zip(const Tensor<T>& a, const Tensor<T>& b, const char* op, F f) {
  const Shape out_shape =
      a.shape() == b.shape() ? a.shape() : broadcast_shapes(a.shape(), b.shape(), op);
  Tensor<T> out = Tensor<T>::empty(out_shape);
  const T* pa = a.data();
  const T* pb = b.data();
  T* po = out.data();
  if (a.shape() == out_shape && b.shape() == out_shape) {
    parallel_for(out.numel(), [&](index_t i) { po[i] = f(pa[i], pb[i]); });
  } else {
    for_each_broadcast(out_shape, a.shape(), b.shape(),
                       [&](index_t o, index_t i, index_t j) { po[o] = f(pa[i], pb[j]); });
  }
  return out;
}

// Copies `x` broadcast to `shape`.
template <class T>
Tensor<T> broadcast_to(const Tensor<T>& x, const Shape& shape) {
  if (!broadcastable_to(x.shape(), shape))
    detail::throw_shape("broadcast_to", "shape " + x.shape().to_string() +
                                            " cannot be broadcast to " + shape.to_string());
  if (x.shape() == shape) return x;
  Tensor<T> out = Tensor<T>::empty(shape);
  const T* px = x.data();
  T* po = out.data();
  for_each_broadcast(shape, shape, x.shape(),
                     [&](index_t o, index_t, index_t j) { po[o] = px[j]; });
  return out;
}

// out[i] = x[i] where mask == 0, `value` where mask != 0 (mask broadcast to x).
template <class T>
Tensor<T> masked_fill(const Tensor<T>& x, const Tensor<T>& mask, T value) {
  if (!broadcastable_to(mask.shape(), x.shape()))
    detail::throw_shape("masked_fill", "mask of shape " + mask.shape().to_string() +
                                           " cannot be broadcast to input shape " +
                                           x.shape().to_string());
  Tensor<T> out = Tensor<T>::empty(x.shape());
  const T* px = x.data();
  const T* pm = mask.data();
  T* po = out.data();
  for_each_broadcast(x.shape(), x.shape(), mask.shape(), [&](index_t o, index_t i, index_t j) {
    po[o] = pm[j] != T(0) ? value : px[i];
  });
  return out;
}

// Numerically stable scalar helpers shared by kernels and tests.
template <class T>
T stable_sigmoid(T x) {
  if (x >= 0) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}
template <class T>
T stable_softplus(T x) {
  return (x > 0 ? x : T(0)) + std::log1p(std::exp(-std::abs(x)));
}

}  // namespace grokalign::kernels
