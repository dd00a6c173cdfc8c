#pragma once
// Progress of a long run on standard error. On a terminal: one line redrawn in place (at
// most ten times a second) with a bar, the step, steps per second, the time left and the
// latest figures. Otherwise (a log file, CI): a plain line every `plain_interval` seconds,
// so logs stay readable. Debian packages no C++ progress-bar library, hence this small one.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace grokalign::run {

struct ProgressOptions {
  bool quiet = false;            // nothing at all
  double plain_interval = 10.0;  // seconds between plain lines when not on a terminal
  int bar_width = 24;
  std::FILE* stream = stderr;
  int terminal = -1;  // 1 / 0 force the mode; -1 asks isatty
};

// "1h02m", "3m05s", "12s".
inline std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<std::int64_t>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

class Progress {
 public:
  using Clock = std::chrono::steady_clock;
  using Fields = std::vector<std::pair<std::string, double>>;

  Progress(std::string label, std::int64_t first, std::int64_t total, ProgressOptions opt = {})
      : label_(std::move(label)),
        first_(first),
        total_(total),
        opt_(opt),
        start_(Clock::now()),
        last_draw_(start_ - std::chrono::hours(1)) {
    tty_ = opt_.terminal >= 0 ? opt_.terminal == 1 : ::isatty(::fileno(opt_.stream)) == 1;
  }

  // Report reaching `step`, with named figures to show (loss, accuracy, ...).
  void update(std::int64_t step, const Fields& fields = {}) {
    step_ = step;
    if (!fields.empty()) fields_ = fields;
    if (opt_.quiet) return;
    const auto now = Clock::now();
    const double since = seconds_between(last_draw_, now);
    // The last step is drawn by finish(), with the total time, not twice.
    if (since < (tty_ ? 0.1 : opt_.plain_interval) || step >= total_) return;
    last_draw_ = now;
    draw(false);
  }

  // A line of its own that the bar does not overwrite.
  void message(const std::string& text) {
    if (opt_.quiet) return;
    if (tty_) fmt::print(opt_.stream, "\r\033[2K");
    fmt::print(opt_.stream, "{}\n", text);
    if (tty_ && drawn_) draw(false);
    std::fflush(opt_.stream);
  }

  // The final state, ending the bar's line.
  void finish() {
    if (opt_.quiet || finished_) return;
    finished_ = true;
    draw(true);
  }

  double elapsed() const { return seconds_between(start_, Clock::now()); }

 private:
  static double seconds_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  }

  void draw(bool final) {
    const double t = elapsed();
    const double done = static_cast<double>(step_ - first_);
    const double rate = t > 0 ? done / t : 0.0;
    const double left = rate > 0 ? static_cast<double>(total_ - step_) / rate : NAN;
    std::string figures;
    for (const auto& [name, value] : fields_) figures += fmt::format("  {} {:.4g}", name, value);
    const std::string counts =
        fmt::format("{} {}/{}  {:.1f}/s  {} {}{}", label_, step_, total_, rate,
                    final ? "took" : "eta", format_duration(final ? t : left), figures);
    if (tty_) {
      const double frac =
          total_ > 0 ? std::clamp(static_cast<double>(step_) / total_, 0.0, 1.0) : 1.0;
      const int filled = static_cast<int>(frac * opt_.bar_width);
      fmt::print(opt_.stream, "\r\033[2K[{}{}] {:3.0f}% {}{}", std::string(filled, '#'),
                 std::string(opt_.bar_width - filled, '.'), 100 * frac, counts, final ? "\n" : "");
    } else {
      fmt::print(opt_.stream, "{}\n", counts);
    }
    drawn_ = true;
    std::fflush(opt_.stream);
  }

  std::string label_;
  std::int64_t first_, total_, step_ = 0;
  ProgressOptions opt_;
  Clock::time_point start_, last_draw_;
  Fields fields_;
  bool tty_ = false, drawn_ = false, finished_ = false;
};

}  // namespace grokalign::run
