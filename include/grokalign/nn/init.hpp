#pragma once
// Parameter initialisers (torch.nn.init's), each drawing from an explicit Generator so that
// a seed fixes a model. They overwrite a parameter's value in place through Var::assign,
// so graphs, optimisers and modules holding the parameter all see the new value.
//
// Layers constructed without a generator draw from default_generator(): one per thread,
// seeded 0 and reseeded by manual_seed(), as torch.manual_seed does for PyTorch's layers.
// Builders and examples pass their own generator instead.
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "grokalign/core/random.hpp"
#include "grokalign/nn/module.hpp"

namespace grokalign::nn {

inline Generator& default_generator() {
  thread_local Generator gen(0);
  return gen;
}
inline void manual_seed(std::uint64_t seed) {
  default_generator().reseed(seed);
}

namespace init {

// torch.nn.init's fans of a weight [out, in, k...]: in * prod(k) and out * prod(k).
inline index_t fan_in(const Shape& s) {
  if (s.rank() < 2)
    detail::throw_shape("fan_in", "needs a weight of rank 2 or more, got " + s.to_string());
  return s[1] * s.prod(2, s.rank());
}
inline index_t fan_out(const Shape& s) {
  if (s.rank() < 2)
    detail::throw_shape("fan_out", "needs a weight of rank 2 or more, got " + s.to_string());
  return s[0] * s.prod(2, s.rank());
}

template <Scalar T>
void uniform_(Var<T> p, double lo, double hi, Generator& gen) {
  p.assign(rand_uniform<T>(p.shape(), gen, static_cast<T>(lo), static_cast<T>(hi)));
}
template <Scalar T>
void normal_(Var<T> p, double mean, double stddev, Generator& gen) {
  p.assign(randn<T>(p.shape(), gen, static_cast<T>(mean), static_cast<T>(stddev)));
}
template <Scalar T>
void constant_(Var<T> p, double value) {
  p.assign(Tensor<T>::full(p.shape(), static_cast<T>(value)));
}
template <Scalar T>
void zeros_(Var<T> p) {
  constant_(p, 0.0);
}

// PyTorch's default for Linear and Conv2d, weight and bias alike: U(-1/sqrt(fan_in),
// 1/sqrt(fan_in)) with fan_in the weight's (in_features, or in_channels * kh * kw).
template <Scalar T>
void default_uniform_(Var<T> p, index_t fan_in, Generator& gen) {
  const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
  uniform_(p, -bound, bound, gen);
}

// kaiming_normal_(w, mode='fan_out', nonlinearity='relu'): N(0, 2 / fan_out).
template <Scalar T>
void kaiming_normal_fan_out_relu(Var<T> weight, Generator& gen) {
  const index_t fo = fan_out(weight.shape());
  normal_(weight, 0.0, fo > 0 ? std::sqrt(2.0 / static_cast<double>(fo)) : 0.0, gen);
}
// The same for every parameter named "weight" of rank >= 2 (the weights of Linear and
// Conv2d), in named_parameters() order: the reference's loop over its Conv2d and Linear
// modules. Biases are left as they are.
template <Scalar T>
void kaiming_normal_fan_out_relu(Module<T>& module, Generator& gen) {
  for (auto& [name, p] : module.named_parameters()) {
    const std::string_view n(name);
    const auto dot = n.rfind('.');
    const std::string_view last = dot == std::string_view::npos ? n : n.substr(dot + 1);
    if (last == "weight" && p.rank() >= 2) kaiming_normal_fan_out_relu(p, gen);
  }
}

// Multiplies every parameter by s (the "init scale" of the grokking runs).
template <Scalar T>
void scale_parameters(Module<T>& module, double s) {
  for (auto& [name, p] : module.named_parameters()) {
    Tensor<T> v = p.value().clone();
    v.array() *= static_cast<T>(s);
    p.assign(v);
  }
}

}  // namespace init

using init::scale_parameters;

}  // namespace grokalign::nn
