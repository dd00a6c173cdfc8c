#pragma once
// Parameter-free layers: the activations ReLU, Tanh, GELU (exact, erf form) and Sigmoid,
// and Flatten (torch.nn.Flatten: axes from start_dim on become one).
#include "grokalign/nn/module.hpp"
#include "grokalign/ops/activation.hpp"
#include "grokalign/ops/layout.hpp"

namespace grokalign::nn {

template <Scalar T>
class ReLU : public ModuleBase<ReLU<T>, T> {
 public:
  template <class X>
  X apply(const X& x) const {
    return grokalign::relu(x);
  }
};

template <Scalar T>
class Tanh : public ModuleBase<Tanh<T>, T> {
 public:
  template <class X>
  X apply(const X& x) const {
    return grokalign::tanh(x);
  }
};

template <Scalar T>
class GELU : public ModuleBase<GELU<T>, T> {
 public:
  template <class X>
  X apply(const X& x) const {
    return grokalign::gelu(x);
  }
};

template <Scalar T>
class Sigmoid : public ModuleBase<Sigmoid<T>, T> {
 public:
  template <class X>
  X apply(const X& x) const {
    return grokalign::sigmoid(x);
  }
};

template <Scalar T>
class Flatten : public ModuleBase<Flatten<T>, T> {
 public:
  explicit Flatten(int start_dim = 1) : start_(start_dim) {}
  template <class X>
  X apply(const X& x) const {
    return grokalign::flatten(x, start_);
  }
  int start_dim() const noexcept { return start_; }

 private:
  int start_;
};

}  // namespace grokalign::nn
