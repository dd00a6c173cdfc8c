#pragma once
// AdamW (Loshchilov and Hutter) with PyTorch's torch.optim.AdamW semantics, per parameter:
//   t <- t + 1
//   theta <- theta * (1 - lr * weight_decay)          (decoupled decay, before the moments)
//   m <- beta1 * m + (1 - beta1) * g
//   v <- beta2 * v + (1 - beta2) * g^2
//   theta <- theta - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// which is lr * m_hat / (sqrt(v_hat) + eps) arranged as PyTorch evaluates it (except that
// the division by sqrt(1 - beta2^t) is a multiplication by its reciprocal: a last-bit
// difference, for one division per element fewer). The step count
// t is kept per parameter: a parameter that received no gradient in a step keeps its count,
// so its bias correction stays right when it resumes (PyTorch does the same).
// The moments are allocated on a parameter's first step; later steps update everything in
// place with Eigen array expressions and never touch the heap.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "grokalign/optim/optimizer.hpp"

namespace grokalign {

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
};

template <Scalar T>
struct AdamWState {
  std::int64_t step = 0;  // steps this parameter has taken
  Tensor<T> exp_avg;      // m; undefined before the first step
  Tensor<T> exp_avg_sq;   // v; undefined before the first step
};

template <Scalar T>
class AdamW final : public Optimizer<T> {
 public:
  explicit AdamW(std::vector<Var<T>> params, AdamWOptions options = {})
      : Optimizer<T>(std::move(params), "AdamW"), options_(options) {
    validate(options_);
    state_.resize(this->params_.size());
  }
  AdamW(AdamW&&) noexcept = default;
  AdamW& operator=(AdamW&&) noexcept = default;

  void step() override {
    const double b1 = options_.beta1, b2 = options_.beta2;
    const T decay = static_cast<T>(1.0 - options_.lr * options_.weight_decay);
    const T one_minus_b1 = static_cast<T>(1.0 - b1), one_minus_b2 = static_cast<T>(1.0 - b2);
    const T beta1 = static_cast<T>(b1), beta2 = static_cast<T>(b2);
    const T eps = static_cast<T>(options_.eps);
    for (std::size_t i = 0; i < this->params_.size(); ++i) {
      const Var<T>& p = this->params_[i];
      const Tensor<T>* grad = detail::usable_gradient(p, i, "AdamW");
      if (!grad) continue;
      Tensor<T> w = p.value();  // shares the parameter's storage
      AdamWState<T>& s = state_[i];
      detail::prepare_state(s.exp_avg, w.shape(), i, "AdamW", "exp_avg");
      detail::prepare_state(s.exp_avg_sq, w.shape(), i, "AdamW", "exp_avg_sq");
      ++s.step;
      // Scalars in double, as PyTorch computes them in Python floats before the tensor ops.
      const double t = static_cast<double>(s.step);
      const T step_size = static_cast<T>(options_.lr / (1.0 - std::pow(b1, t)));
      // sqrt(v) / sqrt(1 - beta2^t) as a product: one division per element instead of two
      // (the division and the square root dominate the update's cost).
      const T inv_bc2_sqrt = static_cast<T>(1.0 / std::sqrt(1.0 - std::pow(b2, t)));

      auto theta_all = w.array();
      const auto g_all = grad->array();
      auto m_all = s.exp_avg.array();
      auto v_all = s.exp_avg_sq.array();
      // Chunk by chunk, so that the four updates read and write data still in L1 instead
      // of streaming every array through memory four times.
      const Eigen::Index n = theta_all.size();
      for (Eigen::Index at = 0; at < n; at += kChunk) {
        const Eigen::Index len = std::min(kChunk, n - at);
        auto theta = theta_all.segment(at, len);
        const auto g = g_all.segment(at, len);
        auto m = m_all.segment(at, len);
        auto v = v_all.segment(at, len);
        if (options_.weight_decay != 0) theta *= decay;
        m = beta1 * m + one_minus_b1 * g;
        v = beta2 * v + one_minus_b2 * g.square();
        theta -= step_size * m / (v.sqrt() * inv_bc2_sqrt + eps);
      }
    }
  }

  double lr() const noexcept override { return options_.lr; }
  void set_lr(double lr) override {
    AdamWOptions o = options_;
    o.lr = lr;
    validate(o);
    options_ = o;
  }
  const AdamWOptions& options() const noexcept { return options_; }
  const AdamWState<T>& state(std::size_t i) const {
    detail::check_state_index(i, state_.size(), "AdamW");
    return state_[i];
  }
  // Every piece of per-parameter state, for checkpoints (run/checkpoint.hpp): calls
  // visit(name, Tensor&, shape it must have) for each buffer (undefined before the
  // parameter's first step) and visit(name, integer&) for each counter; names are
  // "<parameter index>.<field>".
  template <class Visitor>
  void visit_state(Visitor&& visit) {
    for (std::size_t i = 0; i < state_.size(); ++i) {
      const std::string at = std::to_string(i) + ".";
      const Shape& shape = this->params_[i].shape();
      visit(at + "step", state_[i].step);
      visit(at + "exp_avg", state_[i].exp_avg, shape);
      visit(at + "exp_avg_sq", state_[i].exp_avg_sq, shape);
    }
  }

 private:
  static constexpr Eigen::Index kChunk = 1024;

  static void validate(const AdamWOptions& o) {
    detail::require_option(detail::is_nonnegative(o.lr), "AdamW", "lr", o.lr,
                           "must be a finite number >= 0");
    detail::require_option(detail::is_unit_interval_open(o.beta1), "AdamW", "beta1", o.beta1,
                           "must lie in [0, 1)");
    detail::require_option(detail::is_unit_interval_open(o.beta2), "AdamW", "beta2", o.beta2,
                           "must lie in [0, 1)");
    detail::require_option(detail::is_positive(o.eps), "AdamW", "eps", o.eps,
                           "must be a finite number > 0");
    detail::require_option(detail::is_nonnegative(o.weight_decay), "AdamW", "weight_decay",
                           o.weight_decay, "must be a finite number >= 0");
  }

  AdamWOptions options_;
  std::vector<AdamWState<T>> state_;
};

}  // namespace grokalign
