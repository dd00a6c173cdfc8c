#pragma once
// Gradient clipping, applied between backward() and the optimiser step, in place on each
// parameter's grad() (PyTorch's torch.nn.utils.clip_grad_value_ / clip_grad_norm_).
// Parameters without a gradient are skipped. A parameter listed twice is clipped (and, for
// the norm, counted) twice, as in PyTorch; the check is left out because these run every step.
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "grokalign/optim/optimizer.hpp"

namespace grokalign {
namespace detail {
template <Scalar T>
void check_clip_parameters(const std::vector<Var<T>>& params, const char* op) {
  for (std::size_t i = 0; i < params.size(); ++i)
    if (!params[i].defined())
      throw Error(op, "parameter " + std::to_string(i) + " is undefined (default-constructed)");
}
}  // namespace detail

// Clamps every gradient entry to [-clip_value, clip_value]. NaN entries stay NaN (as with
// torch.clamp), so clipping cannot hide a diverged gradient.
template <Scalar T>
void clip_grad_value(const std::vector<Var<T>>& params, double clip_value) {
  constexpr const char* op = "clip_grad_value";
  detail::require_option(detail::is_nonnegative(clip_value), op, "clip_value", clip_value,
                         "must be a finite number >= 0");
  detail::check_clip_parameters(params, op);
  const T c = static_cast<T>(clip_value);
  for (const auto& p : params) {
    Tensor<T> grad = p.grad();  // shares the gradient's storage
    if (!grad.defined()) continue;
    auto g = grad.array();
    // select() rather than min/max: comparisons with NaN are false, so NaN passes through.
    g = (g > c).select(c, (g < -c).select(-c, g));
  }
}

// Returns the L2 norm of all gradients together (as if concatenated into one vector). If it
// exceeds max_norm, every gradient is multiplied by max_norm / (norm + 1e-6).
// The factor is PyTorch's clamp(max_norm / (norm + 1e-6), max = 1), applied whenever it is
// below 1, which includes norms within 1e-6 under max_norm (a change of at most 1e-6
// relative). A NaN norm makes the factor NaN and every gradient NaN, and an infinite one makes
// it 0, exactly as in PyTorch; with error_if_nonfinite the call throws instead and leaves the
// gradients untouched. The squares are summed in double, so float gradients do not lose
// precision (or overflow) in the total.
template <Scalar T>
T clip_grad_norm(const std::vector<Var<T>>& params, double max_norm,
                 bool error_if_nonfinite = false) {
  constexpr const char* op = "clip_grad_norm";
  detail::require_option(detail::is_nonnegative(max_norm), op, "max_norm", max_norm,
                         "must be a finite number >= 0");
  detail::check_clip_parameters(params, op);
  double sum_sq = 0;
  for (const auto& p : params) {
    const Tensor<T>& grad = p.grad();
    if (!grad.defined()) continue;
    sum_sq += grad.array().template cast<double>().square().sum();
  }
  const double norm = std::sqrt(sum_sq);
  if (error_if_nonfinite && !std::isfinite(norm))
    throw Error(op, "the total norm of the gradients is " + detail::format_option_value(norm) +
                        "; pass error_if_nonfinite = false to clip anyway");
  const double coef = max_norm / (norm + 1e-6);
  if (!(coef >= 1.0)) {
    const T scale = static_cast<T>(coef);
    for (const auto& p : params) {
      Tensor<T> grad = p.grad();
      if (grad.defined()) grad.array() *= scale;
    }
  }
  return static_cast<T>(norm);
}

}  // namespace grokalign
