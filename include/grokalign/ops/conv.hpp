#pragma once
// Convolution and average pooling on NCHW tensors.
//
// conv2d, conv2d_input_grad and conv2d_weight_grad are one bilinear map seen from its three
// sides: with y = conv2d(x, w),
//   <conv2d(x, w), g> = <x, conv2d_input_grad(g, w)> = <w, conv2d_weight_grad(x, g)>.
// Each one's JVP and VJP are therefore again ops of this family, so derivatives of any order
// stay GEMM + im2col and never fall back to element loops. avg_pool2d and
// avg_pool2d_adjoint are linear and each other's adjoint.
#include "grokalign/detail/kernels/conv.hpp"
#include "grokalign/ops/apply.hpp"
#include "grokalign/ops/arithmetic.hpp"

namespace grokalign {

// Same stride and symmetric zero padding along both spatial axes.
struct Conv2dOptions {
  index_t stride = 1;
  index_t padding = 0;
};

template <Differentiable X>
X conv2d(const X& x, const X& weight, Conv2dOptions opts = {});
template <Differentiable X>
X conv2d_input_grad(const X& grad_output, const X& weight, index_t height, index_t width,
                    Conv2dOptions opts = {});
template <Differentiable X>
X conv2d_weight_grad(const X& x, const X& grad_output, index_t kernel_h, index_t kernel_w,
                     Conv2dOptions opts = {});
template <Differentiable X>
X avg_pool2d(const X& x, index_t kernel, index_t stride);
template <Differentiable X>
X avg_pool2d_adjoint(const X& grad_output, index_t height, index_t width, index_t kernel,
                     index_t stride);

namespace rules {

template <Scalar T>
struct Conv2d : RuleBase {
  static constexpr const char* kName = "conv2d";
  using Params = Conv2dOptions;
  static Tensor<T> forward(const Params& p, const Tensor<T>* in) {
    return kernels::conv2d(in[0], in[1], p.stride, p.padding);
  }
  template <class X>
  static X jvp(const Params& p, const X* t, const X* in, const X&) {
    X r;
    if (t[0].defined()) r = conv2d(t[0], in[1], p);
    if (t[1].defined()) r = accumulate(r, conv2d(in[0], t[1], p));
    return r;
  }
  template <class X>
  static void vjp(const Params& p, const X& gy, const X* in, const X&, const bool* need, X* gx) {
    const Shape& xs = in[0].shape();
    const Shape& ws = in[1].shape();
    if (need[0]) gx[0] = conv2d_input_grad(gy, in[1], xs[2], xs[3], p);
    if (need[1]) gx[1] = conv2d_weight_grad(in[0], gy, ws[2], ws[3], p);
  }
};

// z = conv2d_input_grad(g, w), inputs {g, w}.
template <Scalar T>
struct Conv2dInputGrad : RuleBase {
  static constexpr const char* kName = "conv2d_input_grad";
  struct Params {
    Conv2dOptions conv;
    index_t height, width;
  };
  static Tensor<T> forward(const Params& p, const Tensor<T>* in) {
    return kernels::conv2d_input_grad(in[0], in[1], p.height, p.width, p.conv.stride,
                                      p.conv.padding);
  }
  template <class X>
  static X jvp(const Params& p, const X* t, const X* in, const X&) {
    X r;
    if (t[0].defined()) r = conv2d_input_grad(t[0], in[1], p.height, p.width, p.conv);
    if (t[1].defined())
      r = accumulate(r, conv2d_input_grad(in[0], t[1], p.height, p.width, p.conv));
    return r;
  }
  template <class X>
  static void vjp(const Params& p, const X& gz, const X* in, const X&, const bool* need, X* gx) {
    const Shape& ws = in[1].shape();
    if (need[0]) gx[0] = conv2d(gz, in[1], p.conv);
    if (need[1]) gx[1] = conv2d_weight_grad(gz, in[0], ws[2], ws[3], p.conv);
  }
};

// z = conv2d_weight_grad(x, g), inputs {x, g}.
template <Scalar T>
struct Conv2dWeightGrad : RuleBase {
  static constexpr const char* kName = "conv2d_weight_grad";
  struct Params {
    Conv2dOptions conv;
    index_t kernel_h, kernel_w;
  };
  static Tensor<T> forward(const Params& p, const Tensor<T>* in) {
    return kernels::conv2d_weight_grad(in[0], in[1], p.kernel_h, p.kernel_w, p.conv.stride,
                                       p.conv.padding);
  }
  template <class X>
  static X jvp(const Params& p, const X* t, const X* in, const X&) {
    X r;
    if (t[0].defined()) r = conv2d_weight_grad(t[0], in[1], p.kernel_h, p.kernel_w, p.conv);
    if (t[1].defined())
      r = accumulate(r, conv2d_weight_grad(in[0], t[1], p.kernel_h, p.kernel_w, p.conv));
    return r;
  }
  template <class X>
  static void vjp(const Params& p, const X& gz, const X* in, const X&, const bool* need, X* gx) {
    const Shape& xs = in[0].shape();
    if (need[0]) gx[0] = conv2d_input_grad(in[1], gz, xs[2], xs[3], p.conv);
    if (need[1]) gx[1] = conv2d(in[0], gz, p.conv);
  }
};

template <Scalar T>
struct AvgPool2d : RuleBase {
  static constexpr const char* kName = "avg_pool2d";
  struct Params {
    index_t kernel, stride;
  };
  static Tensor<T> forward(const Params& p, const Tensor<T>* in) {
    return kernels::avg_pool2d(in[0], p.kernel, p.stride);
  }
  template <class X>
  static X jvp(const Params& p, const X* t, const X*, const X&) {
    return avg_pool2d(t[0], p.kernel, p.stride);
  }
  template <class X>
  static void vjp(const Params& p, const X& gy, const X* in, const X&, const bool*, X* gx) {
    const Shape& xs = in[0].shape();
    gx[0] = avg_pool2d_adjoint(gy, xs[2], xs[3], p.kernel, p.stride);
  }
};

template <Scalar T>
struct AvgPool2dAdjoint : RuleBase {
  static constexpr const char* kName = "avg_pool2d_adjoint";
  struct Params {
    index_t height, width, kernel, stride;
  };
  static Tensor<T> forward(const Params& p, const Tensor<T>* in) {
    return kernels::avg_pool2d_adjoint(in[0], p.height, p.width, p.kernel, p.stride);
  }
  template <class X>
  static X jvp(const Params& p, const X* t, const X*, const X&) {
    return avg_pool2d_adjoint(t[0], p.height, p.width, p.kernel, p.stride);
  }
  template <class X>
  static void vjp(const Params& p, const X& gz, const X*, const X&, const bool*, X* gx) {
    gx[0] = avg_pool2d(gz, p.kernel, p.stride);
  }
};

}  // namespace rules

// Cross-correlation (PyTorch's conv2d without bias): x [N, C, H, W], weight [O, C, kh, kw]
// -> [N, O, (H + 2 padding - kh) / stride + 1, (W + 2 padding - kw) / stride + 1].
template <Differentiable X>
X conv2d(const X& x, const X& weight, Conv2dOptions opts) {
  return apply_op<rules::Conv2d<scalar_of<X>>>(opts, std::array<X, 2>{x, weight});
}
// The adjoint of conv2d in its input: grad_output [N, O, OH, OW] -> [N, C, height, width].
template <Differentiable X>
X conv2d_input_grad(const X& grad_output, const X& weight, index_t height, index_t width,
                    Conv2dOptions opts) {
  return apply_op<rules::Conv2dInputGrad<scalar_of<X>>>({opts, height, width},
                                                        std::array<X, 2>{grad_output, weight});
}
// The adjoint of conv2d in its weight: -> [O, C, kernel_h, kernel_w].
template <Differentiable X>
X conv2d_weight_grad(const X& x, const X& grad_output, index_t kernel_h, index_t kernel_w,
                     Conv2dOptions opts) {
  return apply_op<rules::Conv2dWeightGrad<scalar_of<X>>>({opts, kernel_h, kernel_w},
                                                         std::array<X, 2>{x, grad_output});
}

// torch.nn.AvgPool2d(kernel, stride): no padding, floor mode.
template <Differentiable X>
X avg_pool2d(const X& x, index_t kernel, index_t stride) {
  return apply_op<rules::AvgPool2d<scalar_of<X>>>({kernel, stride}, std::array<X, 1>{x});
}
template <Differentiable X>
X avg_pool2d(const X& x, index_t kernel) {
  return avg_pool2d(x, kernel, kernel);
}
// The adjoint of avg_pool2d: grad_output [N, C, OH, OW] -> [N, C, height, width].
template <Differentiable X>
X avg_pool2d_adjoint(const X& grad_output, index_t height, index_t width, index_t kernel,
                     index_t stride) {
  return apply_op<rules::AvgPool2dAdjoint<scalar_of<X>>>({height, width, kernel, stride},
                                                         std::array<X, 1>{grad_output});
}

}  // namespace grokalign
