#pragma once
// Element-wise mathematical functions: exp, log, sqrt, pow (scalar exponent), abs, erf,
// clamp and maximum with a constant. Each derivative is written with differentiable ops,
// so every order of derivative is available.
#include <cmath>
#include <limits>
#include <numbers>

#include "grokalign/ops/arithmetic.hpp"

namespace grokalign {

template <Differentiable X>
X exp(const X& x);
template <Differentiable X>
X log(const X& x);
template <Differentiable X>
X pow(const X& x, scalar_of<X> p);
template <Differentiable X>
X erf(const X& x);

namespace rules {

template <Scalar T>
struct Exp : RuleBase {
  static constexpr const char* kName = "exp";
  static constexpr bool kSavesOutput = true;
  struct Params {};
  static Tensor<T> forward(const Params&, const Tensor<T>* in) {
    return kernels::map(in[0], [](T a) { return std::exp(a); });
  }
  template <class X>
  static X jvp(const Params&, const X* t, const X*, const X& out) {
    return t[0] * out;
  }
  template <class X>
  static void vjp(const Params&, const X& gy, const X*, const X& out, const bool*, X* gx) {
    gx[0] = gy * out;
  }
};

template <Scalar T>
struct Log : RuleBase {
  static constexpr const char* kName = "log";
  struct Params {};
  static Tensor<T> forward(const Params&, const Tensor<T>* in) {
    return kernels::map(in[0], [](T a) { return std::log(a); });
  }
  template <class X>
  static X jvp(const Params&, const X* t, const X* in, const X&) {
    return t[0] / in[0];
  }
  template <class X>
  static void vjp(const Params&, const X& gy, const X* in, const X&, const bool*, X* gx) {
    gx[0] = gy / in[0];
  }
};

template <Scalar T>
struct Sqrt : RuleBase {
  static constexpr const char* kName = "sqrt";
  static constexpr bool kSavesOutput = true;
  struct Params {};
  static Tensor<T> forward(const Params&, const Tensor<T>* in) {
    return kernels::map(in[0], [](T a) { return std::sqrt(a); });
  }
  template <class X>
  static X jvp(const Params&, const X* t, const X*, const X& out) {
    return t[0] / out * T(0.5);
  }
  template <class X>
  static void vjp(const Params&, const X& gy, const X*, const X& out, const bool*, X* gx) {
    gx[0] = gy / out * T(0.5);
  }
};

template <Scalar T>
struct Pow : RuleBase {
  static constexpr const char* kName = "pow";
  struct Params {
    T p;
  };
  static Tensor<T> forward(const Params& p, const Tensor<T>* in) {
    if (p.p == T(2)) return kernels::map(in[0], [](T a) { return a * a; });
    return kernels::map(in[0], [e = p.p](T a) { return std::pow(a, e); });
  }
  // d/dx x^p times a cotangent or tangent g. The exponents 0 and 1 multiply by a
  // constant, so no derivative tensor is formed (and 0 is a symbolic zero).
  template <class X>
  static X times_derivative(const Params& p, const X& g, const X& x) {
    if (p.p == T(0)) return X();
    if (p.p == T(1)) return g;
    if (p.p == T(2)) return g * (x * T(2));
    return g * (pow(x, p.p - T(1)) * p.p);
  }
  template <class X>
  static X jvp(const Params& p, const X* t, const X* in, const X&) {
    return times_derivative(p, t[0], in[0]);
  }
  template <class X>
  static void vjp(const Params& p, const X& gy, const X* in, const X&, const bool*, X* gx) {
    gx[0] = times_derivative(p, gy, in[0]);
  }
};

// |x| with d|x|/dx = sign(x), 0 at 0 (as PyTorch).
template <Scalar T>
struct Abs : RuleBase {
  static constexpr const char* kName = "abs";
  struct Params {};
  static Tensor<T> forward(const Params&, const Tensor<T>* in) {
    return kernels::map(in[0], [](T a) { return std::abs(a); });
  }
  static Tensor<T> sign(const Tensor<T>& x) {
    return kernels::map(x, [](T a) { return T((a > 0) - (a < 0)); });
  }
  template <class X>
  static X jvp(const Params&, const X* t, const X* in, const X&) {
    return mul_const(t[0], sign(value_of(in[0])));
  }
  template <class X>
  static void vjp(const Params&, const X& gy, const X* in, const X&, const bool*, X* gx) {
    gx[0] = mul_const(gy, sign(value_of(in[0])));
  }
};

template <Scalar T>
struct Erf : RuleBase {
  static constexpr const char* kName = "erf";
  struct Params {};
  static Tensor<T> forward(const Params&, const Tensor<T>* in) {
    return kernels::map(in[0], [](T a) { return std::erf(a); });
  }
  template <class X>
  static X derivative(const X& x) {
    return exp(-(x * x)) * T(2 / std::sqrt(std::numbers::pi));
  }
  template <class X>
  static X jvp(const Params&, const X* t, const X* in, const X&) {
    return t[0] * derivative(in[0]);
  }
  template <class X>
  static void vjp(const Params&, const X& gy, const X* in, const X&, const bool*, X* gx) {
    gx[0] = gy * derivative(in[0]);
  }
};

// min(max(x, lo), hi). The gradient passes where lo <= x <= hi (PyTorch's convention,
// boundaries included).
template <Scalar T>
struct Clamp : RuleBase {
  static constexpr const char* kName = "clamp";
  struct Params {
    T lo, hi;
  };
  static Tensor<T> forward(const Params& p, const Tensor<T>* in) {
    return kernels::map(in[0],
                        [lo = p.lo, hi = p.hi](T a) { return a < lo ? lo : (a > hi ? hi : a); });
  }
  static Tensor<T> pass_mask(const Params& p, const Tensor<T>& x) {
    return kernels::map(x, [lo = p.lo, hi = p.hi](T a) { return T(a >= lo && a <= hi); });
  }
  template <class X>
  static X jvp(const Params& p, const X* t, const X* in, const X&) {
    return mul_const(t[0], pass_mask(p, value_of(in[0])));
  }
  template <class X>
  static void vjp(const Params& p, const X& gy, const X* in, const X&, const bool*, X* gx) {
    gx[0] = mul_const(gy, pass_mask(p, value_of(in[0])));
  }
};

}  // namespace rules

template <Differentiable X>
X exp(const X& x) {
  return apply_op<rules::Exp<scalar_of<X>>>({}, std::array<X, 1>{x});
}
template <Differentiable X>
X log(const X& x) {
  return apply_op<rules::Log<scalar_of<X>>>({}, std::array<X, 1>{x});
}
template <Differentiable X>
X sqrt(const X& x) {
  return apply_op<rules::Sqrt<scalar_of<X>>>({}, std::array<X, 1>{x});
}
template <Differentiable X>
X pow(const X& x, scalar_of<X> p) {
  return apply_op<rules::Pow<scalar_of<X>>>({p}, std::array<X, 1>{x});
}
template <Differentiable X>
X square(const X& x) {
  return pow(x, scalar_of<X>(2));
}
template <Differentiable X>
X abs(const X& x) {
  return apply_op<rules::Abs<scalar_of<X>>>({}, std::array<X, 1>{x});
}
template <Differentiable X>
X erf(const X& x) {
  return apply_op<rules::Erf<scalar_of<X>>>({}, std::array<X, 1>{x});
}
template <Differentiable X>
X clamp(const X& x, scalar_of<X> lo, scalar_of<X> hi) {
  if (!(lo <= hi))
    detail::throw_shape("clamp", "lower bound " + std::to_string(lo) + " exceeds upper bound " +
                                     std::to_string(hi));
  return apply_op<rules::Clamp<scalar_of<X>>>({lo, hi}, std::array<X, 1>{x});
}
// max(x, c) element-wise for a constant c (torch.clamp_min: gradient 1 where x >= c).
template <Differentiable X>
X maximum(const X& x, scalar_of<X> c) {
  return clamp(x, c, std::numeric_limits<scalar_of<X>>::infinity());
}
// min(x, c) element-wise for a constant c (gradient 1 where x <= c).
template <Differentiable X>
X minimum(const X& x, scalar_of<X> c) {
  return clamp(x, -std::numeric_limits<scalar_of<X>>::infinity(), c);
}
template <Differentiable X>
X operator/(std::type_identity_t<scalar_of<X>> s, const X& x) {
  return pow(x, scalar_of<X>(-1)) * s;
}

}  // namespace grokalign
