#pragma once
// Kernels that move data without arithmetic: permute, narrow (slice) and its adjoint,
// concatenation, and row gather / scatter-add (embedding lookup and its adjoint).
#include <cstring>
#include <memory>
#include <vector>

#include "grokalign/detail/kernels/elementwise.hpp"

namespace grokalign::kernels {

// A fixed axis order, validated once: perm[i] is the input axis that becomes output axis i.
struct Permutation {
  int axes[Shape::kMaxRank] = {};
  int rank = 0;
};

inline Permutation make_permutation(const Shape& s, std::initializer_list<int> perm,
                                    const char* op) {
  Permutation p;
  bool seen[Shape::kMaxRank] = {};
  if (static_cast<int>(perm.size()) != s.rank())
    detail::throw_shape(op, "permutation of " + std::to_string(perm.size()) +
                                " axes given for shape " + s.to_string());
  for (int a : perm) {
    const int n = s.normalize_axis(a, op);
    if (seen[n]) detail::throw_shape(op, "axis " + std::to_string(a) + " repeated in permutation");
    seen[n] = true;
    p.axes[p.rank++] = n;
  }
  return p;
}

inline Permutation inverse(const Permutation& p) {
  Permutation q;
  q.rank = p.rank;
  for (int i = 0; i < p.rank; ++i) q.axes[p.axes[i]] = i;
  return q;
}

template <class T>
Tensor<T> permute(const Tensor<T>& x, const Permutation& p) {
  const Shape& s = x.shape();
  Shape os;
  for (int i = 0; i < p.rank; ++i) os.push_back(s[p.axes[i]]);
  Tensor<T> out = Tensor<T>::empty(os);
  if (x.numel() == 0) return out;
  // Input strides, then the strides seen in output order.
  index_t in_stride[Shape::kMaxRank], st[Shape::kMaxRank], idx[Shape::kMaxRank] = {};
  index_t acc = 1;
  for (int i = s.rank() - 1; i >= 0; --i) {
    in_stride[i] = acc;
    acc *= s[i];
  }
  for (int i = 0; i < p.rank; ++i) st[i] = in_stride[p.axes[i]];
  const int r = p.rank;
  const T* px = x.data();
  T* po = out.data();
  const index_t n = out.numel(), inner = r ? os[r - 1] : 1, inner_st = r ? st[r - 1] : 0;
  index_t src = 0;
  for (index_t o = 0; o < n; o += inner) {
    for (index_t k = 0; k < inner; ++k) po[o + k] = px[src + k * inner_st];
    for (int d = r - 2; d >= 0; --d) {
      ++idx[d];
      src += st[d];
      if (idx[d] < os[d]) break;
      src -= st[d] * os[d];
      idx[d] = 0;
    }
  }
  return out;
}

// Elements [start, start + length) along `axis`.
template <class T>
Tensor<T> narrow(const Tensor<T>& x, int axis, index_t start, index_t length) {
  const Shape& s = x.shape();
  const index_t outer = s.prod(0, axis), n = s[axis], inner = s.prod(axis + 1, s.rank());
  Shape os = s;
  os[axis] = length;
  if (axis == 0) return x.rows(start, length);  // contiguous: a view
  Tensor<T> out = Tensor<T>::empty(os);
  for (index_t o = 0; o < outer; ++o)
    std::memcpy(out.data() + o * length * inner, x.data() + (o * n + start) * inner,
                sizeof(T) * length * inner);
  return out;
}

// The adjoint of narrow: `g` placed at [start, start + g.extent) of zeros of extent `full`.
template <class T>
Tensor<T> narrow_adjoint(const Tensor<T>& g, int axis, index_t start, index_t full) {
  const Shape& s = g.shape();
  const index_t outer = s.prod(0, axis), len = s[axis], inner = s.prod(axis + 1, s.rank());
  Shape os = s;
  os[axis] = full;
  Tensor<T> out = Tensor<T>::zeros(os);
  for (index_t o = 0; o < outer; ++o)
    std::memcpy(out.data() + (o * full + start) * inner, g.data() + o * len * inner,
                sizeof(T) * len * inner);
  return out;
}

template <class T>
Tensor<T> concat(const std::vector<Tensor<T>>& xs, int axis) {
  if (xs.empty()) detail::throw_shape("concat", "no tensors to concatenate");
  const Shape& s0 = xs[0].shape();
  axis = s0.normalize_axis(axis, "concat");
  Shape os = s0;
  os[axis] = 0;
  for (const auto& x : xs) {
    bool ok = x.rank() == s0.rank();
    for (int i = 0; ok && i < s0.rank(); ++i) ok = i == axis || x.shape()[i] == s0[i];
    if (!ok)
      detail::throw_shape("concat", "shapes " + s0.to_string() + " and " + x.shape().to_string() +
                                        " differ outside axis " + std::to_string(axis));
    os[axis] += x.shape()[axis];
  }
  Tensor<T> out = Tensor<T>::empty(os);
  const index_t outer = os.prod(0, axis), inner = os.prod(axis + 1, os.rank()), full = os[axis];
  index_t at = 0;
  for (const auto& x : xs) {
    const index_t len = x.shape()[axis];
    for (index_t o = 0; o < outer; ++o)
      std::memcpy(out.data() + (o * full + at) * inner, x.data() + o * len * inner,
                  sizeof(T) * len * inner);
    at += len;
  }
  return out;
}

// Integer indices with a shape (e.g. token ids [B, T]); shared, immutable once made.
struct Indices {
  std::shared_ptr<const std::vector<index_t>> values;
  Shape shape;

  Indices() = default;
  Indices(std::vector<index_t> v, Shape s)
      : values(std::make_shared<const std::vector<index_t>>(std::move(v))), shape(s) {
    if (static_cast<index_t>(values->size()) != shape.numel())
      detail::throw_shape(
          "Indices", std::to_string(values->size()) + " indices for shape " + shape.to_string());
  }
  explicit Indices(std::vector<index_t> v) : Indices(v, Shape{static_cast<index_t>(v.size())}) {}
  index_t size() const { return shape.numel(); }
  index_t operator[](index_t i) const { return (*values)[i]; }
};

// Rows of `table` [V, ...] picked by `idx`: result [idx.shape..., ...].
template <class T>
Tensor<T> index_select(const Tensor<T>& table, const Indices& idx) {
  if (table.rank() < 1) detail::throw_shape("index_select", "table must have at least one axis");
  const index_t V = table.shape()[0], row = table.shape().prod(1, table.rank());
  Shape os = idx.shape;
  for (int i = 1; i < table.rank(); ++i) os.push_back(table.shape()[i]);
  Tensor<T> out = Tensor<T>::empty(os);
  for (index_t i = 0; i < idx.size(); ++i) {
    const index_t r = idx[i];
    if (r < 0 || r >= V)
      detail::throw_shape("index_select", "index " + std::to_string(r) + " out of range for " +
                                              std::to_string(V) + " rows");
    std::memcpy(out.data() + i * row, table.data() + r * row, sizeof(T) * row);
  }
  return out;
}

// The adjoint of index_select: adds each row of `g` into row idx[i] of zeros [V, ...].
template <class T>
Tensor<T> index_add(const Tensor<T>& g, const Indices& idx, index_t V) {
  const index_t n = idx.size();
  const index_t row = n ? g.numel() / n : 0;
  Shape os;
  os.push_back(V);
  for (int i = idx.shape.rank(); i < g.rank(); ++i) os.push_back(g.shape()[i]);
  for (index_t i = 0; i < n; ++i)
    if (idx[i] < 0 || idx[i] >= V)
      detail::throw_shape("index_add", "index " + std::to_string(idx[i]) + " out of range for " +
                                           std::to_string(V) + " rows");
  Tensor<T> out = Tensor<T>::zeros(os);
  for (index_t i = 0; i < n; ++i) {
    T* dst = out.data() + idx[i] * row;
    const T* src = g.data() + i * row;
    for (index_t k = 0; k < row; ++k) dst[k] += src[k];
  }
  return out;
}

}  // namespace grokalign::kernels
