#pragma once
// Arithmetic primitives with NumPy broadcasting: add, sub, mul, div, neg, scalar forms,
// multiplication by a constant tensor, and the broadcast_to / sum_to pair (each the other's
// adjoint), plus the operators that spell them.
#include "grokalign/detail/kernels/elementwise.hpp"
#include "grokalign/detail/kernels/reduce.hpp"
#include "grokalign/ops/apply.hpp"

namespace grokalign {

template <Differentiable X>
X broadcast_to(const X& x, const Shape& shape);
template <Differentiable X>
X sum_to(const X& x, const Shape& shape);
template <Differentiable X>
X mul_const(const X& x, const Tensor<scalar_of<X>>& mask);

// The broadcast shape of a binary op's two inputs.
template <class X>
Shape result_shape(const X* in) {
  return in[0].shape() == in[1].shape() ? in[0].shape()
                                        : broadcast_shapes(in[0].shape(), in[1].shape(), "jvp");
}

// `x` broadcast to `shape` unless it already has it; a symbolic zero stays one.
template <class X>
X expand_to(const X& x, const Shape& shape) {
  if (!x.defined() || x.shape() == shape) return x;
  return broadcast_to(x, shape);
}
// `g` summed down to `shape` unless it already has it; a symbolic zero stays one.
template <class X>
X reduce_to(const X& g, const Shape& shape) {
  if (!g.defined() || g.shape() == shape) return g;
  return sum_to(g, shape);
}

namespace rules {

template <Scalar T>
struct Add : RuleBase {
  static constexpr const char* kName = "add";
  struct Params {};
  static Tensor<T> forward(const Params&, const Tensor<T>* in) {
    return kernels::zip(in[0], in[1], kName, [](T a, T b) { return a + b; });
  }
  template <class X>
  static X jvp(const Params&, const X* t, const X* in, const X&) {
    return expand_to(accumulate(t[0], t[1]), result_shape(in));
  }
  template <class X>
  static void vjp(const Params&, const X& gy, const X* in, const X&, const bool* need, X* gx) {
    if (need[0]) gx[0] = reduce_to(gy, in[0].shape());
    if (need[1]) gx[1] = reduce_to(gy, in[1].shape());
  }
};

template <Scalar T>
struct Sub : RuleBase {
  static constexpr const char* kName = "sub";
  struct Params {};
  static Tensor<T> forward(const Params&, const Tensor<T>* in) {
    return kernels::zip(in[0], in[1], kName, [](T a, T b) { return a - b; });
  }
  template <class X>
  static X jvp(const Params&, const X* t, const X* in, const X&) {
    if (!t[1].defined()) return expand_to(t[0], result_shape(in));
    if (!t[0].defined()) return expand_to(-t[1], result_shape(in));
    return expand_to(t[0] - t[1], result_shape(in));
  }
  template <class X>
  static void vjp(const Params&, const X& gy, const X* in, const X&, const bool* need, X* gx) {
    if (need[0]) gx[0] = reduce_to(gy, in[0].shape());
    if (need[1]) gx[1] = reduce_to(-gy, in[1].shape());
  }
};

template <Scalar T>
struct Mul : RuleBase {
  static constexpr const char* kName = "mul";
  struct Params {};
  static Tensor<T> forward(const Params&, const Tensor<T>* in) {
    return kernels::zip(in[0], in[1], kName, [](T a, T b) { return a * b; });
  }
  template <class X>
  static X jvp(const Params&, const X* t, const X* in, const X&) {
    X r;
    if (t[0].defined()) r = t[0] * in[1];
    if (t[1].defined()) r = accumulate(r, in[0] * t[1]);
    return expand_to(r, result_shape(in));
  }
  template <class X>
  static void vjp(const Params&, const X& gy, const X* in, const X&, const bool* need, X* gx) {
    if (need[0]) gx[0] = reduce_to(gy * in[1], in[0].shape());
    if (need[1]) gx[1] = reduce_to(gy * in[0], in[1].shape());
  }
};

template <Scalar T>
struct Div : RuleBase {
  static constexpr const char* kName = "div";
  static constexpr bool kSavesOutput = true;
  struct Params {};
  static Tensor<T> forward(const Params&, const Tensor<T>* in) {
    return kernels::zip(in[0], in[1], kName, [](T a, T b) { return a / b; });
  }
  template <class X>
  static X jvp(const Params&, const X* t, const X* in, const X& out) {
    // d(a/b) = (da - out * db) / b
    X num = t[0];
    if (t[1].defined()) num = t[0].defined() ? t[0] - out * t[1] : -(out * t[1]);
    return expand_to(num / in[1], out.shape());
  }
  template <class X>
  static void vjp(const Params&, const X& gy, const X* in, const X& out, const bool* need, X* gx) {
    const X g_over_b = gy / in[1];
    if (need[0]) gx[0] = reduce_to(g_over_b, in[0].shape());
    if (need[1]) gx[1] = reduce_to(-(g_over_b * out), in[1].shape());
  }
};

template <Scalar T>
struct Neg : RuleBase {
  static constexpr const char* kName = "neg";
  struct Params {};
  static Tensor<T> forward(const Params&, const Tensor<T>* in) {
    return kernels::map(in[0], [](T a) { return -a; });
  }
  template <class X>
  static X jvp(const Params&, const X* t, const X*, const X&) {
    return -t[0];
  }
  template <class X>
  static void vjp(const Params&, const X& gy, const X*, const X&, const bool*, X* gx) {
    gx[0] = -gy;
  }
};

template <Scalar T>
struct AddScalar : RuleBase {
  static constexpr const char* kName = "add_scalar";
  struct Params {
    T s;
  };
  static Tensor<T> forward(const Params& p, const Tensor<T>* in) {
    return kernels::map(in[0], [s = p.s](T a) { return a + s; });
  }
  template <class X>
  static X jvp(const Params&, const X* t, const X*, const X&) {
    return t[0];
  }
  template <class X>
  static void vjp(const Params&, const X& gy, const X*, const X&, const bool*, X* gx) {
    gx[0] = gy;
  }
};

template <Scalar T>
struct MulScalar : RuleBase {
  static constexpr const char* kName = "mul_scalar";
  struct Params {
    T s;
  };
  static Tensor<T> forward(const Params& p, const Tensor<T>* in) {
    return kernels::map(in[0], [s = p.s](T a) { return a * s; });
  }
  template <class X>
  static X jvp(const Params& p, const X* t, const X*, const X&) {
    return t[0] * p.s;
  }
  template <class X>
  static void vjp(const Params& p, const X& gy, const X*, const X&, const bool*, X* gx) {
    gx[0] = gy * p.s;
  }
};

// x * c for a constant tensor c of x's shape (a mask, one-hot targets). It is linear in x
// and c is not differentiated, so it has no second derivative: this is how ReLU, abs and
// clamp backpropagate at zero extra cost.
template <Scalar T>
struct MulConst : RuleBase {
  static constexpr const char* kName = "mul_const";
  struct Params {
    Tensor<T> mask;
  };
  static Tensor<T> forward(const Params& p, const Tensor<T>* in) {
    if (!(p.mask.shape() == in[0].shape()))
      detail::throw_shape(kName, "mask of shape " + p.mask.shape().to_string() +
                                     " for input of shape " + in[0].shape().to_string());
    return kernels::zip(in[0], p.mask, kName, [](T a, T m) { return a * m; });
  }
  template <class X>
  static X jvp(const Params& p, const X* t, const X*, const X&) {
    return mul_const(t[0], p.mask);
  }
  template <class X>
  static void vjp(const Params& p, const X& gy, const X*, const X&, const bool*, X* gx) {
    gx[0] = mul_const(gy, p.mask);
  }
};

template <Scalar T>
struct BroadcastTo : RuleBase {
  static constexpr const char* kName = "broadcast_to";
  struct Params {
    Shape shape;
  };
  static Tensor<T> forward(const Params& p, const Tensor<T>* in) {
    return kernels::broadcast_to(in[0], p.shape);
  }
  template <class X>
  static X jvp(const Params& p, const X* t, const X*, const X&) {
    return broadcast_to(t[0], p.shape);
  }
  template <class X>
  static void vjp(const Params&, const X& gy, const X* in, const X&, const bool*, X* gx) {
    gx[0] = sum_to(gy, in[0].shape());
  }
};

template <Scalar T>
struct SumTo : RuleBase {
  static constexpr const char* kName = "sum_to";
  struct Params {
    Shape shape;
  };
  static Tensor<T> forward(const Params& p, const Tensor<T>* in) {
    return kernels::sum_to(in[0], p.shape);
  }
  template <class X>
  static X jvp(const Params& p, const X* t, const X*, const X&) {
    return sum_to(t[0], p.shape);
  }
  template <class X>
  static void vjp(const Params&, const X& gy, const X* in, const X&, const bool*, X* gx) {
    gx[0] = broadcast_to(gy, in[0].shape());
  }
};

}  // namespace rules

template <Differentiable X>
X add(const X& a, const X& b) {
  return apply_op<rules::Add<scalar_of<X>>>({}, std::array<X, 2>{a, b});
}
template <Differentiable X>
X sub(const X& a, const X& b) {
  return apply_op<rules::Sub<scalar_of<X>>>({}, std::array<X, 2>{a, b});
}
template <Differentiable X>
X mul(const X& a, const X& b) {
  return apply_op<rules::Mul<scalar_of<X>>>({}, std::array<X, 2>{a, b});
}
template <Differentiable X>
X div(const X& a, const X& b) {
  return apply_op<rules::Div<scalar_of<X>>>({}, std::array<X, 2>{a, b});
}
template <Differentiable X>
X neg(const X& x) {
  return apply_op<rules::Neg<scalar_of<X>>>({}, std::array<X, 1>{x});
}
template <Differentiable X>
X add_scalar(const X& x, scalar_of<X> s) {
  return apply_op<rules::AddScalar<scalar_of<X>>>({s}, std::array<X, 1>{x});
}
template <Differentiable X>
X mul_scalar(const X& x, scalar_of<X> s) {
  return apply_op<rules::MulScalar<scalar_of<X>>>({s}, std::array<X, 1>{x});
}
template <Differentiable X>
X mul_const(const X& x, const Tensor<scalar_of<X>>& mask) {
  return apply_op<rules::MulConst<scalar_of<X>>>({mask}, std::array<X, 1>{x});
}
template <Differentiable X>
X broadcast_to(const X& x, const Shape& shape) {
  return apply_op<rules::BroadcastTo<scalar_of<X>>>({shape}, std::array<X, 1>{x});
}
template <Differentiable X>
X sum_to(const X& x, const Shape& shape) {
  return apply_op<rules::SumTo<scalar_of<X>>>({shape}, std::array<X, 1>{x});
}

template <Differentiable X>
X operator+(const X& a, const X& b) {
  return add(a, b);
}
template <Differentiable X>
X operator-(const X& a, const X& b) {
  return sub(a, b);
}
template <Differentiable X>
X operator*(const X& a, const X& b) {
  return mul(a, b);
}
template <Differentiable X>
X operator/(const X& a, const X& b) {
  return div(a, b);
}
template <Differentiable X>
X operator-(const X& x) {
  return neg(x);
}
template <Differentiable X>
X operator+(const X& x, std::type_identity_t<scalar_of<X>> s) {
  return add_scalar(x, s);
}
template <Differentiable X>
X operator+(std::type_identity_t<scalar_of<X>> s, const X& x) {
  return add_scalar(x, s);
}
template <Differentiable X>
X operator-(const X& x, std::type_identity_t<scalar_of<X>> s) {
  return add_scalar(x, -s);
}
template <Differentiable X>
X operator-(std::type_identity_t<scalar_of<X>> s, const X& x) {
  return add_scalar(neg(x), s);
}
template <Differentiable X>
X operator*(const X& x, std::type_identity_t<scalar_of<X>> s) {
  return mul_scalar(x, s);
}
template <Differentiable X>
X operator*(std::type_identity_t<scalar_of<X>> s, const X& x) {
  return mul_scalar(x, s);
}
template <Differentiable X>
X operator/(const X& x, std::type_identity_t<scalar_of<X>> s) {
  return mul_scalar(x, scalar_of<X>(1) / s);
}

}  // namespace grokalign
