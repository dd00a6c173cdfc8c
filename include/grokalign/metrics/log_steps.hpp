#pragma once
// The steps at which the reference logs: the unique integers of
// numpy.logspace(0, log10(steps), n).astype(int), plus 0 and steps, ascending.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "grokalign/core/error.hpp"
#include "grokalign/core/shape.hpp"

namespace grokalign::metrics {

// numpy's logspace is 10 ** linspace(0, stop, n), and linspace computes i * (stop / (n - 1))
// with the last point set to stop exactly; astype(int) truncates. The same arithmetic in
// double (and the C library's pow, which numpy calls too) gives the same integers.
inline std::vector<index_t> log_spaced_steps(index_t steps, index_t n) {
  if (steps < 1)
    throw Error("log_spaced_steps", "steps must be at least 1, got " + std::to_string(steps));
  if (n < 0) throw Error("log_spaced_steps", "n must be >= 0, got " + std::to_string(n));
  std::vector<index_t> out = {0, steps};
  const double stop = std::log10(static_cast<double>(steps));
  const double step = n > 1 ? stop / static_cast<double>(n - 1) : 0.0;
  for (index_t i = 0; i < n; ++i) {
    const double y = (n > 1 && i == n - 1) ? stop : static_cast<double>(i) * step;
    out.push_back(static_cast<index_t>(std::pow(10.0, y)));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace grokalign::metrics
