#pragma once
// Stochastic gradient descent with PyTorch's torch.optim.SGD semantics:
//   d = g + weight_decay * theta
//   with momentum: buf = d on the parameter's first step, else
//                  buf = momentum * buf + (1 - dampening) * d
//                  d = nesterov ? d + momentum * buf : buf
//   theta <- theta - lr * d
// The gradient itself is left as it was (PyTorch forms d out of place too), so gradient
// statistics logged after step() still see the raw gradient.
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "grokalign/optim/optimizer.hpp"

namespace grokalign {

struct SgdOptions {
  double lr = 1e-3;  // PyTorch 2's default; the experiments always set it
  double momentum = 0;
  double weight_decay = 0;
  double dampening = 0;
  bool nesterov = false;
};

template <Scalar T>
struct SgdState {
  // Undefined until the parameter's first step with momentum (PyTorch's buffer is None).
  Tensor<T> momentum_buffer;
};

template <Scalar T>
class SGD final : public Optimizer<T> {
 public:
  explicit SGD(std::vector<Var<T>> params, SgdOptions options = {})
      : Optimizer<T>(std::move(params), "SGD"), options_(options) {
    validate(options_);
    state_.resize(this->params_.size());
  }
  SGD(SGD&&) noexcept = default;
  SGD& operator=(SGD&&) noexcept = default;

  void step() override {
    const T lr = static_cast<T>(options_.lr);
    const T wd = static_cast<T>(options_.weight_decay);
    const T mu = static_cast<T>(options_.momentum);
    const T keep = static_cast<T>(1.0 - options_.dampening);
    const bool nesterov = options_.nesterov;
    for (std::size_t i = 0; i < this->params_.size(); ++i) {
      const Var<T>& p = this->params_[i];
      const Tensor<T>* grad = detail::usable_gradient(p, i, "SGD");
      if (!grad) continue;
      Tensor<T> w = p.value();  // shares the parameter's storage
      auto theta = w.array();
      const auto g = grad->array();
      Tensor<T>* buf = nullptr;
      bool first = false;
      if (mu != T(0)) {
        Tensor<T>& b = state_[i].momentum_buffer;
        first = !b.defined();
        detail::prepare_state(b, w.shape(), i, "SGD", "momentum buffer");
        buf = &b;
      }
      // Coefficient-wise expressions read theta(j) before writing it, so using theta inside
      // its own update is alias-safe and needs no temporary.
      auto update = [&](const auto& d) {
        if (!buf) {
          theta -= lr * d;
          return;
        }
        auto m = buf->array();
        if (first)
          m = d;
        else
          m = mu * m + keep * d;
        if (nesterov)
          theta -= lr * (d + mu * m);
        else
          theta -= lr * m;
      };
      // The decay term is left out entirely when wd is 0 (not multiplied by 0), so an
      // infinite weight does not turn into NaN through 0 * inf, as in PyTorch.
      if (wd != T(0))
        update(g + wd * theta);
      else
        update(g);
    }
  }

  double lr() const noexcept override { return options_.lr; }
  void set_lr(double lr) override {
    SgdOptions o = options_;
    o.lr = lr;
    validate(o);
    options_ = o;
  }
  const SgdOptions& options() const noexcept { return options_; }
  const SgdState<T>& state(std::size_t i) const {
    detail::check_state_index(i, state_.size(), "SGD");
    return state_[i];
  }
  // Every piece of per-parameter state, for checkpoints (run/checkpoint.hpp): calls
  // visit(name, Tensor&, shape it must have) for each buffer (undefined before the
  // parameter's first step) and visit(name, integer&) for each counter; names are
  // "<parameter index>.<field>".
  template <class Visitor>
  void visit_state(Visitor&& visit) {
    for (std::size_t i = 0; i < state_.size(); ++i)
      visit(std::to_string(i) + ".momentum_buffer", state_[i].momentum_buffer,
            this->params_[i].shape());
  }

 private:
  static void validate(const SgdOptions& o) {
    detail::require_option(detail::is_nonnegative(o.lr), "SGD", "lr", o.lr,
                           "must be a finite number >= 0");
    detail::require_option(detail::is_nonnegative(o.momentum), "SGD", "momentum", o.momentum,
                           "must be a finite number >= 0");
    detail::require_option(detail::is_nonnegative(o.weight_decay), "SGD", "weight_decay",
                           o.weight_decay, "must be a finite number >= 0");
    detail::require_option(std::isfinite(o.dampening), "SGD", "dampening", o.dampening,
                           "must be finite");
    // PyTorch refuses the same combinations: Nesterov's look-ahead is defined for an
    // undamped momentum buffer only.
    if (o.nesterov && !(o.momentum > 0))
      throw Error("SGD", "invalid nesterov with momentum " +
                             detail::format_option_value(o.momentum) +
                             " (Nesterov momentum requires momentum > 0)");
    if (o.nesterov && o.dampening != 0)
      throw Error("SGD", "invalid nesterov with dampening " +
                             detail::format_option_value(o.dampening) +
                             " (Nesterov momentum requires dampening 0)");
  }

  SgdOptions options_;
  std::vector<SgdState<T>> state_;
};

}  // namespace grokalign
