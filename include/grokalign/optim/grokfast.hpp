#pragma once
// Grokfast gradient filters (Lee et al., arXiv 2405.20233): amplify the slow component of
// the gradient. Call apply() after backward() (and after any clipping the run does before
// filtering) and before the optimiser step; it rewrites each parameter's grad() in place.
//
// Both filters keep state per parameter, created on the first gradient that parameter
// receives, and then update in place without allocating. A parameter without a gradient in
// a call is skipped and its state left as it was (the reference code would fail on a
// missing .grad). Like the optimisers, the filters propagate NaN/Inf gradients unchanged in
// kind; they never throw on them.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "grokalign/optim/optimizer.hpp"

namespace grokalign {

// Exponential moving average filter (the reference's gradfilter_ema):
//   h <- alpha * h + (1 - alpha) * g;  g <- g + lamb * h
// with h starting at the parameter's first gradient, so after the first call h = g and the
// gradient is g + lamb * g. (The reference forms that first h as alpha*g + (1-alpha)*g,
// equal to g up to rounding; we copy g exactly.)
template <Scalar T>
class GrokfastEma {
 public:
  explicit GrokfastEma(std::vector<Var<T>> params, double alpha = 0.98, double lamb = 2.0)
      : params_(std::move(params)), alpha_(alpha), lamb_(lamb) {
    detail::require_option(alpha >= 0 && alpha <= 1, "GrokfastEma", "alpha", alpha,
                           "must lie in [0, 1]");
    detail::require_option(std::isfinite(lamb), "GrokfastEma", "lamb", lamb, "must be finite");
    detail::check_parameter_list(params_, "GrokfastEma");
    ema_.resize(params_.size());
  }
  // A copy would share the averages' storage with the original.
  GrokfastEma(const GrokfastEma&) = delete;
  GrokfastEma& operator=(const GrokfastEma&) = delete;
  GrokfastEma(GrokfastEma&&) noexcept = default;
  GrokfastEma& operator=(GrokfastEma&&) noexcept = default;

  void apply() {
    const T alpha = static_cast<T>(alpha_), rest = static_cast<T>(1.0 - alpha_);
    const T lamb = static_cast<T>(lamb_);
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const Tensor<T>* grad = detail::usable_gradient(params_[i], i, "GrokfastEma");
      if (!grad) continue;
      Tensor<T> gt = *grad;  // shares the gradient's storage
      auto g = gt.array();
      Tensor<T>& h = ema_[i];
      if (!h.defined()) {
        h = gt.clone();
      } else {
        if (!(h.shape() == gt.shape()))
          detail::throw_shape("GrokfastEma", "average of parameter " + std::to_string(i) +
                                                 " has shape " + h.shape().to_string() +
                                                 " but its gradient has shape " +
                                                 gt.shape().to_string());
        h.array() = alpha * h.array() + rest * g;
      }
      g += lamb * h.array();
    }
  }

  // Forgets every average; the next apply() starts again from the gradients it sees.
  void reset() {
    for (auto& h : ema_) h = Tensor<T>();
  }

  // The average h of parameter i; undefined before that parameter's first gradient.
  const Tensor<T>& ema(std::size_t i) const {
    detail::check_state_index(i, ema_.size(), "GrokfastEma");
    return ema_[i];
  }
  // Every piece of per-parameter state, for checkpoints (run/checkpoint.hpp): calls
  // visit(name, Tensor&, shape it must have) for each buffer (undefined before the
  // parameter's first step) and visit(name, integer&) for each counter (none here); names are
  // "<parameter index>.<field>".
  template <class Visitor>
  void visit_state(Visitor&& visit) {
    for (std::size_t i = 0; i < ema_.size(); ++i)
      visit(std::to_string(i) + ".ema", ema_[i], params_[i].shape());
  }
  double alpha() const noexcept { return alpha_; }
  double lamb() const noexcept { return lamb_; }
  const std::vector<Var<T>>& parameters() const noexcept { return params_; }

 private:
  std::vector<Var<T>> params_;
  double alpha_, lamb_;
  std::vector<Tensor<T>> ema_;
};

enum class GrokfastMaFilter { kMean, kSum };

// Moving-window filter (the reference's gradfilter_ma): keep the last `window` raw
// gradients of each parameter, including the current one, and once the window is full set
//   g <- g + lamb * mean(window)   (or sum(window) with GrokfastMaFilter::kSum).
// Warm-up, as in the reference: the gradient is always appended first; with warmup on and
// fewer than `window` gradients held, apply() returns g unchanged. With warmup off the
// filter acts from the first call, averaging over the gradients held so far (the reference
// divides by the deque's current length). The reference's `trigger` flag is not offered.
//
// The window is a preallocated ring of `window` gradient copies per parameter (the same
// memory as the reference's deque). Recomputing the window's sum every call would cost
// `window` passes over the gradient, so a running sum is kept instead (add the newest,
// subtract the one it overwrites). Subtracting a large old gradient from the sum leaves its
// rounding error behind, which would swamp a window of much smaller gradients; so the sum is
// held in double whatever T is, and recomputed from the ring each time it wraps, so that
// such errors can neither build up over a long run nor outlive the window by more than one
// lap of the ring. (A NaN or Inf gradient likewise leaves the sum at the first wrap after it
// left the window, where the reference's recomputed mean drops it at once.)
template <Scalar T>
class GrokfastMa {
 public:
  explicit GrokfastMa(std::vector<Var<T>> params, index_t window = 100, double lamb = 5.0,
                      GrokfastMaFilter filter = GrokfastMaFilter::kMean, bool warmup = true)
      : params_(std::move(params)), window_(window), lamb_(lamb), filter_(filter), warmup_(warmup) {
    detail::require_option(window >= 1, "GrokfastMa", "window", static_cast<double>(window),
                           "must be >= 1");
    detail::require_option(std::isfinite(lamb), "GrokfastMa", "lamb", lamb, "must be finite");
    if (filter != GrokfastMaFilter::kMean && filter != GrokfastMaFilter::kSum)
      throw Error("GrokfastMa", "invalid filter (must be kMean or kSum)");
    detail::check_parameter_list(params_, "GrokfastMa");
    state_.resize(params_.size());
  }
  GrokfastMa(const GrokfastMa&) = delete;
  GrokfastMa& operator=(const GrokfastMa&) = delete;
  GrokfastMa(GrokfastMa&&) noexcept = default;
  GrokfastMa& operator=(GrokfastMa&&) noexcept = default;

  void apply() {
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const Tensor<T>* grad = detail::usable_gradient(params_[i], i, "GrokfastMa");
      if (!grad) continue;
      Tensor<T> gt = *grad;  // shares the gradient's storage
      State& s = state_[i];
      const index_t n = gt.numel();
      if (!s.ring.defined()) {
        s.ring = Tensor<T>::empty(Shape{window_, n});
        s.sum = Tensor<double>::zeros(Shape{n});
      } else if (s.sum.numel() != n) {
        detail::throw_shape("GrokfastMa", "window of parameter " + std::to_string(i) + " holds " +
                                              std::to_string(s.sum.numel()) +
                                              " numbers per gradient but its gradient has " +
                                              std::to_string(n));
      }
      auto g = gt.array();
      auto sum = s.sum.array();
      auto slot = slot_of(s, s.head, n);
      if (s.count == window_) sum -= slot.template cast<double>();  // the oldest leaves
      slot = g;
      sum += g.template cast<double>();
      s.head = (s.head + 1) % window_;
      s.count = std::min<index_t>(s.count + 1, window_);
      if (s.head == 0) {
        sum = slot_of(s, 0, n).template cast<double>();
        for (index_t k = 1; k < window_; ++k) sum += slot_of(s, k, n).template cast<double>();
      }
      if (warmup_ && s.count < window_) continue;
      const double scale =
          filter_ == GrokfastMaFilter::kMean ? lamb_ / static_cast<double>(s.count) : lamb_;
      g += (scale * sum).template cast<T>();
    }
  }

  // Empties every window; warm-up starts over.
  void reset() {
    for (auto& s : state_) s = State();
  }

  // How many gradients of parameter i the window holds (at most `window`).
  index_t count(std::size_t i) const {
    detail::check_state_index(i, state_.size(), "GrokfastMa");
    return state_[i].count;
  }
  // For checkpoints, as GrokfastEma::visit_state; the ring is [window, numel] and the running
  // sum [numel] in double.
  template <class Visitor>
  void visit_state(Visitor&& visit) {
    for (std::size_t i = 0; i < state_.size(); ++i) {
      const std::string at = std::to_string(i) + ".";
      const index_t n = params_[i].numel();
      visit(at + "ring", state_[i].ring, Shape{window_, n});
      visit(at + "sum", state_[i].sum, Shape{n});
      visit(at + "head", state_[i].head);
      visit(at + "count", state_[i].count);
    }
  }
  index_t window() const noexcept { return window_; }
  double lamb() const noexcept { return lamb_; }
  GrokfastMaFilter filter() const noexcept { return filter_; }
  bool warmup() const noexcept { return warmup_; }
  const std::vector<Var<T>>& parameters() const noexcept { return params_; }

 private:
  struct State {
    Tensor<T> ring;      // [window, numel]: row k is one stored gradient
    Tensor<double> sum;  // [numel]: sum of the rows currently held
    index_t head = 0;
    index_t count = 0;
  };
  static typename Tensor<T>::ArrayMap slot_of(State& s, index_t k, index_t n) {
    return typename Tensor<T>::ArrayMap(s.ring.data() + k * n, n);
  }

  std::vector<Var<T>> params_;
  index_t window_;
  double lamb_;
  GrokfastMaFilter filter_;
  bool warmup_;
  std::vector<State> state_;
};

}  // namespace grokalign
