#pragma once
// Primitives that rearrange elements: reshape (a view), permute/transpose, narrow (slice)
// and its adjoint, concat/stack, row gather (embedding lookup) and its adjoint, and
// masked_fill (causal attention). Each one's VJP is another op of this file.
#include <vector>

#include "grokalign/detail/kernels/layout.hpp"
#include "grokalign/ops/arithmetic.hpp"

namespace grokalign {

using kernels::Indices;
using kernels::Permutation;

template <Differentiable X>
X reshape(const X& x, const Shape& shape);
template <Differentiable X>
X permute(const X& x, const Permutation& perm);
template <Differentiable X>
X narrow(const X& x, int axis, index_t start, index_t length);
template <Differentiable X>
X narrow_adjoint(const X& g, int axis, index_t start, index_t full);
template <Differentiable X>
X index_select(const X& table, const Indices& idx);
template <Differentiable X>
X index_add(const X& g, const Indices& idx, index_t rows);
template <Differentiable X>
X masked_fill(const X& x, const Tensor<scalar_of<X>>& mask, scalar_of<X> value);
template <Differentiable X>
X concat(const std::vector<X>& xs, int axis);

template <class X>
X zeros_like(const X& x) {
  return constant_like(x, Tensor<scalar_of<X>>::zeros(x.shape()));
}

namespace rules {

template <Scalar T>
struct Reshape : RuleBase {
  static constexpr const char* kName = "reshape";
  struct Params {
    Shape shape;
  };
  static Tensor<T> forward(const Params& p, const Tensor<T>* in) { return in[0].reshape(p.shape); }
  template <class X>
  static X jvp(const Params& p, const X* t, const X*, const X&) {
    return reshape(t[0], p.shape);
  }
  template <class X>
  static void vjp(const Params&, const X& gy, const X* in, const X&, const bool*, X* gx) {
    gx[0] = reshape(gy, in[0].shape());
  }
};

template <Scalar T>
struct Permute : RuleBase {
  static constexpr const char* kName = "permute";
  struct Params {
    Permutation perm;
  };
  static Tensor<T> forward(const Params& p, const Tensor<T>* in) {
    return kernels::permute(in[0], p.perm);
  }
  template <class X>
  static X jvp(const Params& p, const X* t, const X*, const X&) {
    return permute(t[0], p.perm);
  }
  template <class X>
  static void vjp(const Params& p, const X& gy, const X*, const X&, const bool*, X* gx) {
    gx[0] = permute(gy, kernels::inverse(p.perm));
  }
};

template <Scalar T>
struct Narrow : RuleBase {
  static constexpr const char* kName = "narrow";
  struct Params {
    int axis;
    index_t start, length;
  };
  static Tensor<T> forward(const Params& p, const Tensor<T>* in) {
    return kernels::narrow(in[0], p.axis, p.start, p.length);
  }
  template <class X>
  static X jvp(const Params& p, const X* t, const X*, const X&) {
    return narrow(t[0], p.axis, p.start, p.length);
  }
  template <class X>
  static void vjp(const Params& p, const X& gy, const X* in, const X&, const bool*, X* gx) {
    gx[0] = narrow_adjoint(gy, p.axis, p.start, in[0].shape()[p.axis]);
  }
};

template <Scalar T>
struct NarrowAdjoint : RuleBase {
  static constexpr const char* kName = "narrow_adjoint";
  struct Params {
    int axis;
    index_t start, full;
  };
  static Tensor<T> forward(const Params& p, const Tensor<T>* in) {
    return kernels::narrow_adjoint(in[0], p.axis, p.start, p.full);
  }
  template <class X>
  static X jvp(const Params& p, const X* t, const X*, const X&) {
    return narrow_adjoint(t[0], p.axis, p.start, p.full);
  }
  template <class X>
  static void vjp(const Params& p, const X& gy, const X* in, const X&, const bool*, X* gx) {
    gx[0] = narrow(gy, p.axis, p.start, in[0].shape()[p.axis]);
  }
};

template <Scalar T>
struct Concat : RuleBase {
  static constexpr const char* kName = "concat";
  struct Params {
    int axis;
    std::size_t count;
  };
  static Tensor<T> forward(const Params& p, const Tensor<T>* in) {
    return kernels::concat(std::vector<Tensor<T>>(in, in + p.count), p.axis);
  }
  template <class X>
  static X jvp(const Params& p, const X* t, const X* in, const X&) {
    std::vector<X> parts(p.count);
    for (std::size_t i = 0; i < p.count; ++i) parts[i] = t[i].defined() ? t[i] : zeros_like(in[i]);
    return concat(parts, p.axis);
  }
  template <class X>
  static void vjp(const Params& p, const X& gy, const X* in, const X&, const bool* need, X* gx) {
    index_t at = 0;
    for (std::size_t i = 0; i < p.count; ++i) {
      const index_t len = in[i].shape()[p.axis];
      if (need[i]) gx[i] = narrow(gy, p.axis, at, len);
      at += len;
    }
  }
};

template <Scalar T>
struct IndexSelect : RuleBase {
  static constexpr const char* kName = "index_select";
  struct Params {
    Indices idx;
  };
  static Tensor<T> forward(const Params& p, const Tensor<T>* in) {
    return kernels::index_select(in[0], p.idx);
  }
  template <class X>
  static X jvp(const Params& p, const X* t, const X*, const X&) {
    return index_select(t[0], p.idx);
  }
  template <class X>
  static void vjp(const Params& p, const X& gy, const X* in, const X&, const bool*, X* gx) {
    gx[0] = index_add(gy, p.idx, in[0].shape()[0]);
  }
};

template <Scalar T>
struct IndexAdd : RuleBase {
  static constexpr const char* kName = "index_add";
  struct Params {
    Indices idx;
    index_t rows;
  };
  static Tensor<T> forward(const Params& p, const Tensor<T>* in) {
    const Shape& s = in[0].shape();
    bool ok = s.rank() >= p.idx.shape.rank();
    for (int i = 0; ok && i < p.idx.shape.rank(); ++i) ok = s[i] == p.idx.shape[i];
    if (!ok)
      detail::throw_shape(kName, "source of shape " + s.to_string() +
                                     " does not start with the index shape " +
                                     p.idx.shape.to_string());
    return kernels::index_add(in[0], p.idx, p.rows);
  }
  template <class X>
  static X jvp(const Params& p, const X* t, const X*, const X&) {
    return index_add(t[0], p.idx, p.rows);
  }
  template <class X>
  static void vjp(const Params& p, const X& gy, const X*, const X&, const bool*, X* gx) {
    gx[0] = index_select(gy, p.idx);
  }
};

// Entries where the (broadcast) mask is non-zero are replaced by a constant; the rest pass
// through, so both derivatives are the same fill with zero.
template <Scalar T>
struct MaskedFill : RuleBase {
  static constexpr const char* kName = "masked_fill";
  struct Params {
    Tensor<T> mask;
    T value;
  };
  static Tensor<T> forward(const Params& p, const Tensor<T>* in) {
    return kernels::masked_fill(in[0], p.mask, p.value);
  }
  template <class X>
  static X jvp(const Params& p, const X* t, const X*, const X&) {
    return masked_fill(t[0], p.mask, T(0));
  }
  template <class X>
  static void vjp(const Params& p, const X& gy, const X*, const X&, const bool*, X* gx) {
    gx[0] = masked_fill(gy, p.mask, T(0));
  }
};

}  // namespace rules

template <Differentiable X>
X reshape(const X& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  if (x.numel() != shape.numel())
    detail::throw_shape("reshape", "cannot reshape " + x.shape().to_string() + " (" +
                                       std::to_string(x.numel()) + " elements) to " +
                                       shape.to_string());
  return apply_op<rules::Reshape<scalar_of<X>>>({shape}, std::array<X, 1>{x});
}
// Collapses axes [start_axis, rank) into one (torch.flatten(x, start_axis)).
template <Differentiable X>
X flatten(const X& x, int start_axis = 1) {
  const Shape& s = x.shape();
  if (s.rank() == 0) return reshape(x, Shape{1});
  const int a = s.normalize_axis(start_axis, "flatten");
  Shape out;
  for (int i = 0; i < a; ++i) out.push_back(s[i]);
  out.push_back(s.prod(a, s.rank()));
  return reshape(x, out);
}
template <Differentiable X>
X permute(const X& x, const Permutation& perm) {
  return apply_op<rules::Permute<scalar_of<X>>>({perm}, std::array<X, 1>{x});
}
template <Differentiable X>
X permute(const X& x, std::initializer_list<int> axes) {
  return permute(x, kernels::make_permutation(x.shape(), axes, "permute"));
}
// Swaps two axes (the last two by default).
template <Differentiable X>
X transpose(const X& x, int a = -2, int b = -1) {
  const Shape& s = x.shape();
  Permutation p;
  p.rank = s.rank();
  for (int i = 0; i < p.rank; ++i) p.axes[i] = i;
  const int na = s.normalize_axis(a, "transpose"), nb = s.normalize_axis(b, "transpose");
  std::swap(p.axes[na], p.axes[nb]);
  return permute(x, p);
}
template <Differentiable X>
X narrow(const X& x, int axis, index_t start, index_t length) {
  const int a = x.shape().normalize_axis(axis, "narrow");
  if (start < 0 || length < 0 || start + length > x.shape()[a])
    detail::throw_shape("narrow", "range [" + std::to_string(start) + ", " +
                                      std::to_string(start + length) + ") on axis " +
                                      std::to_string(axis) + " is outside shape " +
                                      x.shape().to_string());
  return apply_op<rules::Narrow<scalar_of<X>>>({a, start, length}, std::array<X, 1>{x});
}
template <Differentiable X>
X narrow_adjoint(const X& g, int axis, index_t start, index_t full) {
  const int a = g.shape().normalize_axis(axis, "narrow_adjoint");
  if (start < 0 || start + g.shape()[a] > full)
    detail::throw_shape("narrow_adjoint", "slice of shape " + g.shape().to_string() + " at " +
                                              std::to_string(start) + " does not fit extent " +
                                              std::to_string(full));
  return apply_op<rules::NarrowAdjoint<scalar_of<X>>>({a, start, full}, std::array<X, 1>{g});
}
template <Differentiable X>
X concat(const std::vector<X>& xs, int axis) {
  if (xs.empty()) detail::throw_shape("concat", "no tensors to concatenate");
  const int a = xs[0].shape().normalize_axis(axis, "concat");
  return apply_op<rules::Concat<scalar_of<X>>>({a, xs.size()}, xs);
}
// Joins equal-shaped tensors along a new axis.
template <Differentiable X>
X stack(const std::vector<X>& xs, int axis = 0) {
  if (xs.empty()) detail::throw_shape("stack", "no tensors to stack");
  const Shape& s = xs[0].shape();
  const int a = axis < 0 ? axis + s.rank() + 1 : axis;
  if (a < 0 || a > s.rank())
    detail::throw_shape(
        "stack", "axis " + std::to_string(axis) + " out of range for shape " + s.to_string());
  Shape expanded;
  for (int i = 0; i < s.rank(); ++i) {
    if (i == a) expanded.push_back(1);
    expanded.push_back(s[i]);
  }
  if (a == s.rank()) expanded.push_back(1);
  std::vector<X> parts;
  parts.reserve(xs.size());
  for (const auto& x : xs) {
    if (!(x.shape() == s))
      detail::throw_shape("stack",
                          "shapes " + s.to_string() + " and " + x.shape().to_string() + " differ");
    parts.push_back(reshape(x, expanded));
  }
  return concat(parts, a);
}
template <Differentiable X>
X index_select(const X& table, const Indices& idx) {
  return apply_op<rules::IndexSelect<scalar_of<X>>>({idx}, std::array<X, 1>{table});
}
template <Differentiable X>
X index_add(const X& g, const Indices& idx, index_t rows) {
  return apply_op<rules::IndexAdd<scalar_of<X>>>({idx, rows}, std::array<X, 1>{g});
}
template <Differentiable X>
X masked_fill(const X& x, const Tensor<scalar_of<X>>& mask, scalar_of<X> value) {
  return apply_op<rules::MaskedFill<scalar_of<X>>>({mask, value}, std::array<X, 1>{x});
}

}  // namespace grokalign
