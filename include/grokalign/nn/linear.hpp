#pragma once
// Linear<T>: y = x W^T + b with W [out, in] and b [out], torch.nn.Linear's layout, on inputs
// [..., in]. A batch of any leading shape is one GEMM.
#include <string>

#include "grokalign/nn/init.hpp"
#include "grokalign/nn/module.hpp"
#include "grokalign/ops/matmul.hpp"

namespace grokalign::nn {

template <Scalar T>
class Linear : public ModuleBase<Linear<T>, T> {
 public:
  // Initialised as PyTorch's default (init::default_uniform_ for weight and bias).
  Linear(index_t in_features, index_t out_features, bool bias = true,
         Generator& gen = default_generator())
      : in_(in_features), out_(out_features) {
    if (in_features < 1 || out_features < 1)
      grokalign::detail::throw_shape("Linear", "features must be positive, got " +
                                                   std::to_string(in_features) + " -> " +
                                                   std::to_string(out_features));
    weight_ = this->register_parameter("weight", Tensor<T>::zeros(Shape{out_, in_}));
    if (bias) bias_ = this->register_parameter("bias", Tensor<T>::zeros(Shape{out_}));
    Linear::reset_parameters(gen);
  }

  template <class X>
  X apply(const X& x) const {
    if (x.rank() < 2 || x.dim(-1) != in_)
      grokalign::detail::throw_shape("Linear", "a layer " + std::to_string(in_) + " -> " +
                                                   std::to_string(out_) + " needs inputs [..., " +
                                                   std::to_string(in_) + "], got " +
                                                   x.shape().to_string());
    const X y = matmul(x, lift<X>(weight_), false, true);
    return bias_.defined() ? y + lift<X>(bias_) : y;
  }

  void reset_parameters(Generator& gen) override {
    init::default_uniform_(weight_, in_, gen);
    if (bias_.defined()) init::default_uniform_(bias_, in_, gen);
  }

  Var<T> weight() const noexcept { return weight_; }
  // Undefined when the layer has no bias.
  Var<T> bias() const noexcept { return bias_; }
  bool has_bias() const noexcept { return bias_.defined(); }
  index_t in_features() const noexcept { return in_; }
  index_t out_features() const noexcept { return out_; }

 private:
  index_t in_, out_;
  Var<T> weight_, bias_;
};

}  // namespace grokalign::nn
