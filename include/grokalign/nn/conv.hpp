#pragma once
// Conv2d<T> and AvgPool2d<T> on NCHW batches, torch.nn.Conv2d / AvgPool2d with square
// kernels, one stride and symmetric zero padding. Conv2d's weight is [out, in, k, k].
#include <optional>
#include <string>

#include "grokalign/nn/init.hpp"
#include "grokalign/nn/module.hpp"
#include "grokalign/ops/conv.hpp"
#include "grokalign/ops/layout.hpp"

namespace grokalign::nn {

namespace internal {
template <class X>
void require_nchw(const X& x, index_t channels, const char* op) {
  if (x.rank() != 4 || (channels > 0 && x.dim(1) != channels))
    grokalign::detail::throw_shape(
        op, "needs inputs [N, " + (channels > 0 ? std::to_string(channels) : std::string("C")) +
                ", H, W], got " + x.shape().to_string());
}
}  // namespace internal

template <Scalar T>
class Conv2d : public ModuleBase<Conv2d<T>, T> {
 public:
  // Initialised as PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and
  // bias, fan_in = in_channels * kernel * kernel.
  Conv2d(index_t in_channels, index_t out_channels, index_t kernel, index_t stride = 1,
         index_t padding = 0, bool bias = true, Generator& gen = default_generator())
      : in_(in_channels), out_(out_channels), kernel_(kernel), opts_{stride, padding} {
    if (in_channels < 1 || out_channels < 1 || kernel < 1 || stride < 1 || padding < 0)
      grokalign::detail::throw_shape(
          "Conv2d", "invalid configuration: in " + std::to_string(in_channels) + ", out " +
                        std::to_string(out_channels) + ", kernel " + std::to_string(kernel) +
                        ", stride " + std::to_string(stride) + ", padding " +
                        std::to_string(padding));
    weight_ =
        this->register_parameter("weight", Tensor<T>::zeros(Shape{out_, in_, kernel_, kernel_}));
    if (bias) bias_ = this->register_parameter("bias", Tensor<T>::zeros(Shape{out_}));
    Conv2d::reset_parameters(gen);
  }

  template <class X>
  X apply(const X& x) const {
    internal::require_nchw(x, in_, "Conv2d");
    const X y = conv2d(x, lift<X>(weight_), opts_);
    return bias_.defined() ? y + reshape(lift<X>(bias_), Shape{1, out_, 1, 1}) : y;
  }

  void reset_parameters(Generator& gen) override {
    const index_t fan_in = in_ * kernel_ * kernel_;
    init::default_uniform_(weight_, fan_in, gen);
    if (bias_.defined()) init::default_uniform_(bias_, fan_in, gen);
  }

  Var<T> weight() const noexcept { return weight_; }
  Var<T> bias() const noexcept { return bias_; }  // undefined without bias
  bool has_bias() const noexcept { return bias_.defined(); }
  index_t in_channels() const noexcept { return in_; }
  index_t out_channels() const noexcept { return out_; }
  index_t kernel_size() const noexcept { return kernel_; }
  index_t stride() const noexcept { return opts_.stride; }
  index_t padding() const noexcept { return opts_.padding; }
  // Spatial extent of the output for an input extent (PyTorch's floor formula).
  index_t output_size(index_t input_size) const noexcept {
    return (input_size + 2 * opts_.padding - kernel_) / opts_.stride + 1;
  }

 private:
  index_t in_, out_, kernel_;
  Conv2dOptions opts_;
  Var<T> weight_, bias_;
};

template <Scalar T>
class AvgPool2d : public ModuleBase<AvgPool2d<T>, T> {
 public:
  // The stride defaults to the kernel, as in PyTorch.
  explicit AvgPool2d(index_t kernel, std::optional<index_t> stride = std::nullopt)
      : kernel_(kernel), stride_(stride.value_or(kernel)) {
    if (kernel_ < 1 || stride_ < 1)
      grokalign::detail::throw_shape("AvgPool2d", "kernel " + std::to_string(kernel_) +
                                                      " and stride " + std::to_string(stride_) +
                                                      " must be positive");
  }

  template <class X>
  X apply(const X& x) const {
    internal::require_nchw(x, 0, "AvgPool2d");
    if (x.dim(2) < kernel_ || x.dim(3) < kernel_)
      grokalign::detail::throw_shape("AvgPool2d", "kernel " + std::to_string(kernel_) +
                                                      " is larger than the input " +
                                                      x.shape().to_string());
    return avg_pool2d(x, kernel_, stride_);
  }

  index_t kernel_size() const noexcept { return kernel_; }
  index_t stride() const noexcept { return stride_; }
  index_t output_size(index_t input_size) const noexcept {
    return (input_size - kernel_) / stride_ + 1;
  }

 private:
  index_t kernel_, stride_;
};

}  // namespace grokalign::nn
