#pragma once
// Softmax and log-softmax along one axis, shifted by the maximum for stability with large
// logits.
#include <cmath>
#include <limits>

#include "grokalign/detail/kernels/elementwise.hpp"

namespace grokalign::kernels {

template <class T, bool Log>
Tensor<T> softmax_impl(const Tensor<T>& x, int axis) {
  const Shape& s = x.shape();
  const index_t outer = s.prod(0, axis), n = s[axis], inner = s.prod(axis + 1, s.rank());
  Tensor<T> out = Tensor<T>::empty(s);
  const T* px = x.data();
  T* po = out.data();
  parallel_for(outer * inner, [&](index_t oi) {
    const index_t o = oi / inner, i = oi % inner;
    const T* src = px + o * n * inner + i;
    T* dst = po + o * n * inner + i;
    T mx = -std::numeric_limits<T>::infinity();
    for (index_t k = 0; k < n; ++k) mx = std::max(mx, src[k * inner]);
    if (!std::isfinite(mx)) mx = T(0);
    T total = 0;
    for (index_t k = 0; k < n; ++k) total += std::exp(src[k * inner] - mx);
    if constexpr (Log) {
      const T lse = mx + std::log(total);
      for (index_t k = 0; k < n; ++k) dst[k * inner] = src[k * inner] - lse;
    } else {
      const T inv = T(1) / total;
      for (index_t k = 0; k < n; ++k) dst[k * inner] = std::exp(src[k * inner] - mx) * inv;
    }
  });
  return out;
}

template <class T>
Tensor<T> softmax(const Tensor<T>& x, int axis) {
  return softmax_impl<T, false>(x, axis);
}
template <class T>
Tensor<T> log_softmax(const Tensor<T>& x, int axis) {
  return softmax_impl<T, true>(x, axis);
}

}  // namespace grokalign::kernels
