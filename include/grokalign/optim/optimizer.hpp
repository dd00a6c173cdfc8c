#pragma once
// Optimizer<T>: what SGD and AdamW share: the parameter list, zero_grad(), and the checks
// that keep per-parameter state aligned with its parameter.
//
// Parameters are updated in place: a Tensor copy shares storage, so writing through
// `Tensor<T> w = p.value()` changes the parameter every graph and module sees. A parameter
// whose grad() is undefined (no backward pass reached it) is skipped, as PyTorch skips
// parameters whose .grad is None; its state is left untouched.
//
// Non-finite gradients are not filtered: like PyTorch, a NaN or Inf gradient propagates
// into the parameter (and, for stateful optimisers, into the state). Nothing crashes; check
// the loss or clip_grad_norm's return value (clip.hpp) if a run must stop on divergence.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "grokalign/core/error.hpp"
#include "grokalign/core/tensor.hpp"
#include "grokalign/reverse/var.hpp"

namespace grokalign {
namespace detail {

inline std::string format_option_value(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// Every option check funnels through here so messages read alike:
// "AdamW: invalid beta2 1.5 (must lie in [0, 1))".
inline void require_option(bool ok, const char* owner, const char* option, double value,
                           const char* requirement) {
  if (!ok)
    throw Error(owner, std::string("invalid ") + option + " " + format_option_value(value) + " (" +
                           requirement + ")");
}

// NaN fails every comparison, so each predicate also refuses NaN.
inline bool is_nonnegative(double v) noexcept {
  return v >= 0 && std::isfinite(v);
}
inline bool is_positive(double v) noexcept {
  return v > 0 && std::isfinite(v);
}
inline bool is_unit_interval_open(double v) noexcept {
  return v >= 0 && v < 1;
}

// A parameter list must hold defined leaves, each once: updating the same storage twice per
// step, or a graph-internal value, would silently corrupt training.
template <Scalar T>
void check_parameter_list(const std::vector<Var<T>>& params, const char* owner) {
  std::vector<std::pair<const void*, std::size_t>> seen;
  seen.reserve(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (!params[i].defined())
      throw Error(owner, "parameter " + std::to_string(i) + " is undefined (default-constructed)");
    if (!params[i].is_leaf())
      throw Error(owner, "parameter " + std::to_string(i) + " (shape " +
                             params[i].shape().to_string() +
                             ") is the result of an operation, not a leaf; optimise the leaf it "
                             "was computed from, or detach() it");
    seen.emplace_back(params[i].impl(), i);
  }
  std::sort(seen.begin(), seen.end());
  for (std::size_t k = 1; k < seen.size(); ++k)
    if (seen[k].first == seen[k - 1].first)
      throw Error(owner, "parameters " + std::to_string(seen[k - 1].second) + " and " +
                             std::to_string(seen[k].second) +
                             " are the same Var; list each parameter once");
}

// The gradient to use for parameter i, or nullptr when it has none this step.
template <Scalar T>
const Tensor<T>* usable_gradient(const Var<T>& p, std::size_t i, const char* owner) {
  const Tensor<T>& g = p.grad();
  if (!g.defined()) return nullptr;
  if (!(g.shape() == p.value().shape()))
    throw_shape(owner, "gradient of parameter " + std::to_string(i) + " has shape " +
                           g.shape().to_string() + " but the parameter has shape " +
                           p.value().shape().to_string());
  return &g;
}

// Creates a zero state buffer on first use; afterwards insists it still fits the parameter
// (a state buffer of the wrong size would be read out of bounds by the update).
template <Scalar T>
void prepare_state(Tensor<T>& state, const Shape& shape, std::size_t i, const char* owner,
                   const char* what) {
  if (!state.defined()) {
    state = Tensor<T>::zeros(shape);
  } else if (!(state.shape() == shape)) {
    throw_shape(owner, std::string(what) + " of parameter " + std::to_string(i) + " has shape " +
                           state.shape().to_string() + " but the parameter has shape " +
                           shape.to_string());
  }
}

inline void check_state_index(std::size_t i, std::size_t n, const char* owner) {
  if (i >= n)
    throw Error(owner, "state index " + std::to_string(i) + " out of range (" + std::to_string(n) +
                           " parameters)");
}

}  // namespace detail

template <Scalar T>
class Optimizer {
 public:
  using value_type = T;

  virtual ~Optimizer() = default;
  // Copies would share state buffers (Tensor copies share storage) and update each other's
  // moments behind their backs; moving is fine.
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient.
  virtual void step() = 0;
  virtual double lr() const noexcept = 0;
  // For learning-rate schedules; validated like the constructor's option.
  virtual void set_lr(double lr) = 0;

  // Drops every parameter's gradient (set_to_none, the default, as in PyTorch 2), so that a
  // parameter the next backward pass does not reach counts as "without gradient" and step()
  // skips it: no weight decay, no moment decay, as PyTorch does. Chosen over zeroing in place
  // because that would let step() decay an unreached parameter with a zero gradient (a
  // silent difference from PyTorch), and it costs nothing: the next backward takes its
  // buffers from the memory cache, so a steady-state step still never touches the heap
  // (tests/alloc). zero_grad(false) zeroes the buffers in place instead (PyTorch 1's default).
  void zero_grad(bool set_to_none = true) {
    for (auto& p : params_) {
      if (set_to_none)
        p.set_grad(Tensor<T>());
      else
        p.zero_grad();
    }
  }

  const std::vector<Var<T>>& parameters() const noexcept { return params_; }
  std::size_t num_parameters() const noexcept { return params_.size(); }
  const char* name() const noexcept { return name_; }

 protected:
  Optimizer(std::vector<Var<T>> params, const char* name)
      : params_(std::move(params)), name_(name) {
    detail::check_parameter_list(params_, name_);
  }
  Optimizer(Optimizer&&) noexcept = default;
  Optimizer& operator=(Optimizer&&) noexcept = default;

  std::vector<Var<T>> params_;
  const char* name_;
};

}  // namespace grokalign
