#pragma once
// argmax and max along one axis, as torch.argmax(x, dim) and torch.max(x, dim).values.
//   argmax(x, axis, keepdim)  the index of the first maximum (NaN counts as the maximum, as
//                             in PyTorch) along `axis`: Indices of the reduced shape.
//                             Not differentiable: indices carry no gradient.
//   max(x, axis, keepdim)     the maximum values. Differentiable in every mode: it is the
//                             gather x[argmax] (index_select on the flattened tensor), so
//                             the gradient reaches the element argmax picked, the first of
//                             tied maxima, exactly as PyTorch routes it.
// Both take a Tensor, a Var or a Dual; argmax looks at the value only.
#include <cmath>
#include <vector>

#include "grokalign/ops/layout.hpp"

namespace grokalign {

namespace detail {

template <Scalar T>
const Tensor<T>& primal_tensor(const Tensor<T>& x) {
  return x;
}
template <Scalar T>
const Tensor<T>& primal_tensor(const Var<T>& x) {
  return x.value();
}
template <class X>
decltype(auto) primal_tensor(const Dual<X>& x) {
  return primal_tensor(x.primal());
}

// Shape with `axis` dropped (or kept with extent 1).
inline Shape reduced_shape(const Shape& s, int axis, bool keepdim) {
  Shape out;
  for (int i = 0; i < s.rank(); ++i) {
    if (i != axis)
      out.push_back(s[i]);
    else if (keepdim)
      out.push_back(1);
  }
  return out;
}

// Flat (row-major) offsets of the first maximum along `axis`, one per reduced position.
template <Scalar T>
std::vector<index_t> argmax_offsets(const Tensor<T>& x, int axis, const char* op) {
  const Shape& s = x.shape();
  const index_t n = s[axis], outer = s.prod(0, axis), inner = s.prod(axis + 1, s.rank());
  if (n == 0)
    throw_shape(op, "axis " + std::to_string(axis) + " of shape " + s.to_string() +
                        " is empty; it has no maximum");
  std::vector<index_t> offsets;
  offsets.reserve(static_cast<std::size_t>(outer * inner));
  const T* d = x.data();
  for (index_t o = 0; o < outer; ++o)
    for (index_t i = 0; i < inner; ++i) {
      index_t best = o * n * inner + i;
      for (index_t k = 1; k < n && !std::isnan(d[best]); ++k) {
        const index_t at = (o * n + k) * inner + i;
        if (d[at] > d[best] || std::isnan(d[at])) best = at;
      }
      offsets.push_back(best);
    }
  return offsets;
}

}  // namespace detail

// Index along `axis` of the first maximum: Indices of x's shape without `axis` (with it as
// extent 1 under keepdim). argmax(logits, -1) gives the predicted class of each row.
template <Differentiable X>
Indices argmax(const X& x, int axis, bool keepdim = false) {
  constexpr const char* op = "argmax";
  const auto& v = detail::primal_tensor(x);
  const int a = v.shape().normalize_axis(axis, op);
  std::vector<index_t> idx = detail::argmax_offsets(v, a, op);
  const index_t n = v.shape()[a], inner = v.shape().prod(a + 1, v.rank());
  for (auto& i : idx) i = (i / inner) % n;
  return Indices(std::move(idx), detail::reduced_shape(v.shape(), a, keepdim));
}

// Maximum along `axis` (values, differentiable; see above).
template <Differentiable X>
X max(const X& x, int axis, bool keepdim = false) {
  constexpr const char* op = "max";
  const auto& v = detail::primal_tensor(x);
  const int a = v.shape().normalize_axis(axis, op);
  const Shape out = detail::reduced_shape(v.shape(), a, keepdim);
  Indices flat(detail::argmax_offsets(v, a, op), out);
  return reshape(index_select(reshape(x, Shape{x.numel(), 1}), flat), out);
}

}  // namespace grokalign
