#pragma once
// Which steps (or epochs) a training run logs and checkpoints at. The paper's figures log at
// log-spaced steps (early training changes fastest) or every k steps; a checkpoint is taken
// at each logged step unless --checkpoint_every says otherwise, so a resumed run carries on
// from the last row it logged and its stats.csv ends up equal to an uninterrupted run's.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "grokalign/core/error.hpp"
#include "grokalign/metrics/log_steps.hpp"
#include "grokalign/run/flags.hpp"

namespace grokalign::run {

class LogSchedule {
 public:
  // 0, the unique integers of logspace(0, log10(steps), n), and steps (metrics::log_spaced_steps).
  static LogSchedule log_spaced(std::int64_t steps, std::int64_t n) {
    return LogSchedule(metrics::log_spaced_steps(steps, n));
  }
  // 0, k, 2k, ... and steps itself.
  static LogSchedule every(std::int64_t steps, std::int64_t k) {
    if (k < 1) throw Error("LogSchedule", "log interval must be >= 1, got " + std::to_string(k));
    std::vector<index_t> s;
    for (std::int64_t i = 0; i < steps; i += k) s.push_back(i);
    s.push_back(steps);
    return LogSchedule(std::move(s));
  }

  bool logs(std::int64_t step) const {
    return std::binary_search(steps_.begin(), steps_.end(), step);
  }
  const std::vector<index_t>& steps() const noexcept { return steps_; }

 private:
  explicit LogSchedule(std::vector<index_t> steps) : steps_(std::move(steps)) {
    std::sort(steps_.begin(), steps_.end());
    steps_.erase(std::unique(steps_.begin(), steps_.end()), steps_.end());
  }
  std::vector<index_t> steps_;
};

// Whether to checkpoint after `step`: at every logged step by default (--checkpoint_every
// not given), every N steps with --checkpoint_every N, never with 0.
inline bool checkpoint_now(const CommonOptions& common, std::int64_t step, bool logged) {
  if (common.checkpoint_every == 0) return false;
  if (common.checkpoint_every > 0) return step % common.checkpoint_every == 0;
  return logged;
}

}  // namespace grokalign::run
