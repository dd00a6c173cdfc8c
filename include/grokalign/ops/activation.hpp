#pragma once
// Activations and normalised exponentials: relu, sigmoid, tanh, softplus, gelu (the exact,
// erf-based form, PyTorch's default), softmax and log_softmax along an axis.
#include <cmath>
#include <numbers>

#include "grokalign/detail/kernels/softmax.hpp"
#include "grokalign/ops/math.hpp"
#include "grokalign/ops/reduction.hpp"

namespace grokalign {

template <Differentiable X>
X sigmoid(const X& x);
template <Differentiable X>
X softmax(const X& x, int axis = -1);
template <Differentiable X>
X pass_where_positive(const X& g, const Tensor<scalar_of<X>>& ref);

namespace rules {

// relu'(x) = 1 for x > 0 and 0 otherwise (0 at x = 0, as PyTorch). The derivative is a
// constant mask, so the second derivative is an exact (symbolic) zero and costs nothing.
template <Scalar T>
struct Relu : RuleBase {
  static constexpr const char* kName = "relu";
  struct Params {};
  static Tensor<T> forward(const Params&, const Tensor<T>* in) {
    return kernels::map(in[0], [](T a) { return a > 0 ? a : T(0); });
  }
  template <class X>
  static X jvp(const Params&, const X* t, const X* in, const X&) {
    return pass_where_positive(t[0], value_of(in[0]));
  }
  template <class X>
  static void vjp(const Params&, const X& gy, const X* in, const X&, const bool*, X* gx) {
    gx[0] = pass_where_positive(gy, value_of(in[0]));
  }
};

// g * [ref > 0], ReLU's derivative at ref applied to a tangent or cotangent g, in one pass
// with no mask tensor. Linear in g with ref a constant: it is its own adjoint and has no
// derivative in ref, so a pass over a recorded ReLU backward costs one masked copy.
template <Scalar T>
struct PassWherePositive : RuleBase {
  static constexpr const char* kName = "pass_where_positive";
  struct Params {
    Tensor<T> ref;
  };
  static Tensor<T> forward(const Params& p, const Tensor<T>* in) {
    if (!(p.ref.shape() == in[0].shape()))
      detail::throw_shape(kName, "reference of shape " + p.ref.shape().to_string() +
                                     " for input of shape " + in[0].shape().to_string());
    return kernels::zip(in[0], p.ref, kName, [](T g, T r) { return r > 0 ? g : T(0); });
  }
  template <class X>
  static X jvp(const Params& p, const X* t, const X*, const X&) {
    return pass_where_positive(t[0], p.ref);
  }
  template <class X>
  static void vjp(const Params& p, const X& gy, const X*, const X&, const bool*, X* gx) {
    gx[0] = pass_where_positive(gy, p.ref);
  }
};

template <Scalar T>
struct Sigmoid : RuleBase {
  static constexpr const char* kName = "sigmoid";
  static constexpr bool kSavesOutput = true;
  struct Params {};
  static Tensor<T> forward(const Params&, const Tensor<T>* in) {
    return kernels::map(in[0], [](T a) { return kernels::stable_sigmoid(a); });
  }
  template <class X>
  static X derivative(const X& out) {
    return out * (T(1) - out);
  }
  template <class X>
  static X jvp(const Params&, const X* t, const X*, const X& out) {
    return t[0] * derivative(out);
  }
  template <class X>
  static void vjp(const Params&, const X& gy, const X*, const X& out, const bool*, X* gx) {
    gx[0] = gy * derivative(out);
  }
};

template <Scalar T>
struct Tanh : RuleBase {
  static constexpr const char* kName = "tanh";
  static constexpr bool kSavesOutput = true;
  struct Params {};
  static Tensor<T> forward(const Params&, const Tensor<T>* in) {
    return kernels::map(in[0], [](T a) { return std::tanh(a); });
  }
  template <class X>
  static X derivative(const X& out) {
    return T(1) - out * out;
  }
  template <class X>
  static X jvp(const Params&, const X* t, const X*, const X& out) {
    return t[0] * derivative(out);
  }
  template <class X>
  static void vjp(const Params&, const X& gy, const X*, const X& out, const bool*, X* gx) {
    gx[0] = gy * derivative(out);
  }
};

// log(1 + e^x), computed without overflow; its derivative is sigmoid(x).
template <Scalar T>
struct Softplus : RuleBase {
  static constexpr const char* kName = "softplus";
  struct Params {};
  static Tensor<T> forward(const Params&, const Tensor<T>* in) {
    return kernels::map(in[0], [](T a) { return kernels::stable_softplus(a); });
  }
  template <class X>
  static X jvp(const Params&, const X* t, const X* in, const X&) {
    return t[0] * sigmoid(in[0]);
  }
  template <class X>
  static void vjp(const Params&, const X& gy, const X* in, const X&, const bool*, X* gx) {
    gx[0] = gy * sigmoid(in[0]);
  }
};

// x * Phi(x) with Phi the standard normal CDF; derivative Phi(x) + x * phi(x).
template <Scalar T>
struct Gelu : RuleBase {
  static constexpr const char* kName = "gelu";
  struct Params {};
  static Tensor<T> forward(const Params&, const Tensor<T>* in) {
    return kernels::map(
        in[0], [](T a) { return a * T(0.5) * (T(1) + std::erf(a * T(std::numbers::sqrt2 / 2))); });
  }
  template <class X>
  static X derivative(const X& x) {
    const X cdf = (erf(x * T(std::numbers::sqrt2 / 2)) + T(1)) * T(0.5);
    const X pdf = exp(x * x * T(-0.5)) * T(std::numbers::inv_sqrtpi / std::numbers::sqrt2);
    return cdf + x * pdf;
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

template <Scalar T>
struct Softmax : RuleBase {
  static constexpr const char* kName = "softmax";
  static constexpr bool kSavesOutput = true;
  struct Params {
    int axis;
  };
  static Tensor<T> forward(const Params& p, const Tensor<T>* in) {
    return kernels::softmax(in[0], p.axis);
  }
  // d softmax . v = s * (v - <s, v>) along the axis; the map is self-adjoint.
  template <class X>
  static X apply_jacobian(const Params& p, const X& v, const X& out) {
    Shape keep = out.shape();
    keep[p.axis] = 1;
    return out * (v - sum_to(v * out, keep));
  }
  template <class X>
  static X jvp(const Params& p, const X* t, const X*, const X& out) {
    return apply_jacobian(p, t[0], out);
  }
  template <class X>
  static void vjp(const Params& p, const X& gy, const X*, const X& out, const bool*, X* gx) {
    gx[0] = apply_jacobian(p, gy, out);
  }
};

template <Scalar T>
struct LogSoftmax : RuleBase {
  static constexpr const char* kName = "log_softmax";
  static constexpr bool kSavesOutput = true;
  struct Params {
    int axis;
  };
  static Tensor<T> forward(const Params& p, const Tensor<T>* in) {
    return kernels::log_softmax(in[0], p.axis);
  }
  static Shape keep_shape(const Params& p, const Shape& s) {
    Shape keep = s;
    keep[p.axis] = 1;
    return keep;
  }
  template <class X>
  static X jvp(const Params& p, const X* t, const X*, const X& out) {
    return t[0] - sum_to(exp(out) * t[0], keep_shape(p, out.shape()));
  }
  template <class X>
  static void vjp(const Params& p, const X& gy, const X*, const X& out, const bool*, X* gx) {
    gx[0] = gy - exp(out) * sum_to(gy, keep_shape(p, out.shape()));
  }
};

}  // namespace rules

template <Differentiable X>
X pass_where_positive(const X& g, const Tensor<scalar_of<X>>& ref) {
  return apply_op<rules::PassWherePositive<scalar_of<X>>>({ref}, std::array<X, 1>{g});
}
template <Differentiable X>
X relu(const X& x) {
  return apply_op<rules::Relu<scalar_of<X>>>({}, std::array<X, 1>{x});
}
template <Differentiable X>
X sigmoid(const X& x) {
  return apply_op<rules::Sigmoid<scalar_of<X>>>({}, std::array<X, 1>{x});
}
template <Differentiable X>
X tanh(const X& x) {
  return apply_op<rules::Tanh<scalar_of<X>>>({}, std::array<X, 1>{x});
}
template <Differentiable X>
X softplus(const X& x) {
  return apply_op<rules::Softplus<scalar_of<X>>>({}, std::array<X, 1>{x});
}
template <Differentiable X>
X gelu(const X& x) {
  return apply_op<rules::Gelu<scalar_of<X>>>({}, std::array<X, 1>{x});
}
template <Differentiable X>
X softmax(const X& x, int axis) {
  const int a = x.shape().normalize_axis(axis, "softmax");
  return apply_op<rules::Softmax<scalar_of<X>>>({a}, std::array<X, 1>{x});
}
template <Differentiable X>
X log_softmax(const X& x, int axis = -1) {
  const int a = x.shape().normalize_axis(axis, "log_softmax");
  return apply_op<rules::LogSoftmax<scalar_of<X>>>({a}, std::array<X, 1>{x});
}

}  // namespace grokalign
