#pragma once
// The non-finite guard: a step whose loss or gradients hold NaN or Inf would poison the
// parameters, the optimiser's moments and every later checkpoint. Checking before the
// optimiser step stops the run with the step and the parameter named, while the last
// checkpoint on disk is still a good one.
#include <cmath>
#include <cstdint>
#include <string>

#include <fmt/format.h>

#include "grokalign/run/state.hpp"

namespace grokalign::run {

class NonFiniteError : public Error {
 public:
  using Error::Error;
};

inline void check_finite_loss(std::int64_t step, const std::string& what, double value) {
  if (!std::isfinite(value))
    throw NonFiniteError("non-finite guard",
                         fmt::format("at step {} the {} is {}; stopping (the last checkpoint "
                                     "is kept; --no_nan_guard turns this check off)",
                                     step, what, value));
}

template <Scalar T>
void check_finite_gradients(std::int64_t step, const NamedParameters<T>& params) {
  for (const auto& [name, p] : params) {
    const Tensor<T>& g = p.grad();
    if (!g.defined()) continue;
    if (!g.array().isFinite().all())
      throw NonFiniteError("non-finite guard",
                           fmt::format("at step {} the gradient of parameter '{}' holds a NaN "
                                       "or Inf; stopping (the last checkpoint is kept; "
                                       "--no_nan_guard turns this check off)",
                                       step, name));
  }
}

}  // namespace grokalign::run
