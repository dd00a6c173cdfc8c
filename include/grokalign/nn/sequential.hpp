#pragma once
// Sequential<T>: modules applied in order, named "0", "1", ... as torch.nn.Sequential, so a
// bias-free MLP's parameters are "0.weight", "2.weight", ... exactly as in PyTorch.
#include <concepts>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "grokalign/nn/module.hpp"

namespace grokalign::nn {

template <Scalar T>
class Sequential : public ModuleBase<Sequential<T>, T> {
 public:
  Sequential() = default;
  // Sequential<T>(Linear<T>(2, 3), ReLU<T>(), ...): modules are moved in.
  template <class... M>
  requires(sizeof...(M) > 0 && (std::derived_from<std::remove_cvref_t<M>, Module<T>> &&
                                ...)) explicit Sequential(M&&... modules) {
    (push_back(std::forward<M>(modules)), ...);
  }

  Sequential& push_back(std::shared_ptr<Module<T>> module) {
    layers_.push_back(this->register_module(std::to_string(layers_.size()), std::move(module)));
    return *this;
  }
  // Modules are not copyable, so a module object must be moved in.
  template <class M>
  requires std::derived_from<std::remove_cvref_t<M>, Module<T>> Sequential& push_back(M&& module) {
    return push_back(std::shared_ptr<Module<T>>(
        std::make_shared<std::remove_cvref_t<M>>(std::forward<M>(module))));
  }

  std::size_t size() const noexcept { return layers_.size(); }
  bool empty() const noexcept { return layers_.empty(); }
  Module<T>& operator[](std::size_t i) const { return *ptr(i); }
  std::shared_ptr<Module<T>> ptr(std::size_t i) const {
    if (i >= layers_.size())
      throw Error("Sequential", "index " + std::to_string(i) + " out of range for " +
                                    std::to_string(layers_.size()) + " modules");
    return layers_[i];
  }
  // The i-th module as its concrete type: seq.at<Linear<double>>(0).weight().
  template <class M>
  M& at(std::size_t i) const {
    auto* m = dynamic_cast<M*>(ptr(i).get());
    if (!m)
      throw Error("Sequential::at",
                  "module " + std::to_string(i) + " is not of the requested type");
    return *m;
  }

  template <class X>
  X apply(const X& x) const {
    X y = x;
    for (const auto& m : layers_) y = m->forward(y);
    return y;
  }

 private:
  std::vector<std::shared_ptr<Module<T>>> layers_;
};

}  // namespace grokalign::nn
