#pragma once
// Learning-rate schedules with PyTorch's formulas (torch.optim.lr_scheduler, closed forms),
// applied through Optimizer::set_lr. Epoch e counts scheduler.step() calls, as in PyTorch:
// the constructor applies e = 0, and each step() moves to e + 1 and sets that lr. Call
// step() once per epoch or once per optimiser step, whichever the schedule is meant in.
//
//   step_lr(opt, step_size, gamma)            base * gamma^floor(e / step_size)     (StepLR)
//   cosine_lr(opt, t_max, eta_min)            eta_min + (base - eta_min)(1 + cos(pi e / t_max))/2
//                                             for e <= t_max, eta_min after
//                                             (CosineAnnealingLR's closed form, clamped: PyTorch's
//                                             recursive form would climb again past t_max)
//   linear_lr(opt, start, end, total)         base * (start + (end - start) min(e, total) / total)
//                                             (LinearLR)
//   warmup_lr(opt, warmup, start = 1/3)       linear_lr(opt, start, 1, warmup): linear warm-up
//   warmup_cosine_lr(opt, warmup, t_max, eta_min, start = 1/3)
//                                             warm-up, then cosine_lr over t_max epochs counted
//                                             from the end of the warm-up (SequentialLR of the two)
//
// base is the optimiser's lr when the scheduler is made. A scheduler keeps only its epoch: to
// resume, make it again on the restored optimiser and call set_epoch(e) (the base lr must be
// the original one, so restore the optimiser's lr first or pass it as `base_lr`).
#include <cmath>
#include <cstdint>
#include <functional>
#include <numbers>
#include <string>
#include <utility>

#include "grokalign/optim/optimizer.hpp"

namespace grokalign {

namespace schedule {

inline double step(double base, std::int64_t epoch, std::int64_t step_size, double gamma) {
  return base * std::pow(gamma, static_cast<double>(epoch / step_size));
}
inline double cosine(double base, std::int64_t epoch, std::int64_t t_max, double eta_min) {
  if (epoch >= t_max) return eta_min;
  const double c = std::cos(std::numbers::pi * static_cast<double>(epoch) / t_max);
  return eta_min + (base - eta_min) * (1 + c) / 2;
}
inline double linear(double base, std::int64_t epoch, double start, double end,
                     std::int64_t total) {
  const double f = epoch >= total ? end : start + (end - start) * epoch / total;
  return base * f;
}

}  // namespace schedule

template <Scalar T>
class LrScheduler {
 public:
  // lr at epoch e given the base lr.
  using Rule = std::function<double(double base_lr, std::int64_t epoch)>;

  LrScheduler(Optimizer<T>& opt, Rule rule, double base_lr = -1)
      : opt_(&opt), rule_(std::move(rule)), base_lr_(base_lr < 0 ? opt.lr() : base_lr) {
    apply();
  }
  // Moves to the next epoch and sets its lr.
  void step() {
    ++epoch_;
    apply();
  }
  // Jumps to epoch e (for resuming) and sets its lr.
  void set_epoch(std::int64_t e) {
    if (e < 0) throw Error("LrScheduler", "epoch " + std::to_string(e) + " is negative");
    epoch_ = e;
    apply();
  }
  std::int64_t epoch() const noexcept { return epoch_; }
  double base_lr() const noexcept { return base_lr_; }
  // The lr this schedule gives at epoch e (without applying it).
  double lr_at(std::int64_t e) const { return rule_(base_lr_, e); }

 private:
  void apply() { opt_->set_lr(lr_at(epoch_)); }

  Optimizer<T>* opt_;
  Rule rule_;
  double base_lr_;
  std::int64_t epoch_ = 0;
};

namespace detail {
inline void require_schedule(bool ok, const char* op, const std::string& what) {
  if (!ok) throw Error(op, what);
}
}  // namespace detail

template <Scalar T>
LrScheduler<T> step_lr(Optimizer<T>& opt, std::int64_t step_size, double gamma = 0.1) {
  detail::require_schedule(step_size > 0, "step_lr",
                           "step_size " + std::to_string(step_size) + " must be positive");
  detail::require_schedule(
      detail::is_nonnegative(gamma), "step_lr",
      "gamma " + detail::format_option_value(gamma) + " must be a finite number >= 0");
  return LrScheduler<T>(opt, [step_size, gamma](double base, std::int64_t e) {
    return schedule::step(base, e, step_size, gamma);
  });
}

template <Scalar T>
LrScheduler<T> cosine_lr(Optimizer<T>& opt, std::int64_t t_max, double eta_min = 0) {
  detail::require_schedule(t_max > 0, "cosine_lr",
                           "t_max " + std::to_string(t_max) + " must be positive");
  detail::require_schedule(
      detail::is_nonnegative(eta_min), "cosine_lr",
      "eta_min " + detail::format_option_value(eta_min) + " must be a finite number >= 0");
  return LrScheduler<T>(opt, [t_max, eta_min](double base, std::int64_t e) {
    return schedule::cosine(base, e, t_max, eta_min);
  });
}

namespace detail {
inline void check_linear(const char* op, double start, double end, std::int64_t total) {
  // PyTorch's LinearLR refuses the same: a zero start would set lr 0 and stall Adam-type
  // bias corrections in no useful way.
  require_schedule(start > 0 && start <= 1, op,
                   "start_factor " + format_option_value(start) + " must lie in (0, 1]");
  require_schedule(end >= 0 && end <= 1, op,
                   "end_factor " + format_option_value(end) + " must lie in [0, 1]");
  require_schedule(total > 0, op, "total_iters " + std::to_string(total) + " must be positive");
}
}  // namespace detail

template <Scalar T>
LrScheduler<T> linear_lr(Optimizer<T>& opt, double start_factor = 1.0 / 3, double end_factor = 1.0,
                         std::int64_t total_iters = 5) {
  detail::check_linear("linear_lr", start_factor, end_factor, total_iters);
  return LrScheduler<T>(opt, [=](double base, std::int64_t e) {
    return schedule::linear(base, e, start_factor, end_factor, total_iters);
  });
}

template <Scalar T>
LrScheduler<T> warmup_lr(Optimizer<T>& opt, std::int64_t warmup, double start_factor = 1.0 / 3) {
  detail::check_linear("warmup_lr", start_factor, 1.0, warmup);
  return LrScheduler<T>(opt, [=](double base, std::int64_t e) {
    return schedule::linear(base, e, start_factor, 1.0, warmup);
  });
}

template <Scalar T>
LrScheduler<T> warmup_cosine_lr(Optimizer<T>& opt, std::int64_t warmup, std::int64_t t_max,
                                double eta_min = 0, double start_factor = 1.0 / 3) {
  detail::check_linear("warmup_cosine_lr", start_factor, 1.0, warmup);
  detail::require_schedule(t_max > 0, "warmup_cosine_lr",
                           "t_max " + std::to_string(t_max) + " must be positive");
  detail::require_schedule(
      detail::is_nonnegative(eta_min), "warmup_cosine_lr",
      "eta_min " + detail::format_option_value(eta_min) + " must be a finite number >= 0");
  return LrScheduler<T>(opt, [=](double base, std::int64_t e) {
    return e < warmup ? schedule::linear(base, e, start_factor, 1.0, warmup)
                      : schedule::cosine(base, e - warmup, t_max, eta_min);
  });
}

}  // namespace grokalign
