#pragma once
// What a training run puts into a checkpoint and takes back out: parameters by their
// state_dict names, optimiser and Grokfast state (through their visit_state), generators.
// Loading checks every entry against the live object before changing anything, so a
// checkpoint from another model is refused whole, with the first mismatch named.
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "grokalign/reverse/var.hpp"
#include "grokalign/run/checkpoint.hpp"

namespace grokalign::run {

template <Scalar T>
using NamedParameters = std::vector<std::pair<std::string, Var<T>>>;

template <Scalar T>
void save_parameters(Checkpoint& ckpt, const std::string& prefix,
                     const NamedParameters<T>& params) {
  for (const auto& [name, p] : params) ckpt.put(prefix + name, p.value());
}

template <Scalar T>
void load_parameters(const Checkpoint& ckpt, const std::string& prefix,
                     const NamedParameters<T>& params) {
  std::vector<Tensor<T>> values;
  values.reserve(params.size());
  for (const auto& [name, p] : params) values.push_back(ckpt.tensor<T>(prefix + name, &p.shape()));
  for (std::size_t i = 0; i < params.size(); ++i) {
    Tensor<T> live = params[i].second.value();  // shares the parameter's storage
    live.copy_from(values[i]);
  }
}

// Optimisers and gradient filters: anything with visit_state(visitor) (optim/).
template <class Stateful>
void save_state(Checkpoint& ckpt, const std::string& prefix, Stateful& s) {
  s.visit_state([&](const std::string& name, auto& value, auto&&... /*shape*/) {
    using V = std::decay_t<decltype(value)>;
    if constexpr (std::is_integral_v<V>) {
      ckpt.put(prefix + name, std::vector<std::int64_t>{static_cast<std::int64_t>(value)});
    } else if (value.defined()) {
      ckpt.put(prefix + name, value);
    }
  });
}

template <class Stateful>
void load_state(const Checkpoint& ckpt, const std::string& prefix, Stateful& s) {
  // First pass reads and checks everything; the second assigns, so a bad checkpoint leaves
  // the optimiser as it was.
  std::vector<std::function<void()>> assign;
  s.visit_state([&](const std::string& name, auto& value, auto&&... shape) {
    using V = std::decay_t<decltype(value)>;
    if constexpr (std::is_integral_v<V>) {
      const V v = static_cast<V>(ckpt.integer(prefix + name));
      assign.push_back([&value, v] { value = v; });
    } else {
      V t;  // undefined: the state did not exist yet when the checkpoint was written
      if (ckpt.has(prefix + name))
        t = ckpt.tensor<typename V::value_type>(prefix + name, &shape...);
      assign.push_back([&value, t] { value = t; });
    }
  });
  for (auto& f : assign) f();
}

}  // namespace grokalign::run
