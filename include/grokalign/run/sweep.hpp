#pragma once
// A sweep: the same recipe run for several variants x seeds, each run in its own folder
// OUT/<variant>/seed<k>/, run side by side on a pool of std::threads (--jobs), and then
// summarised per variant.
//
// Each run is independent: the caller's function builds its own model, optimiser,
// generators and run::Run inside the worker thread, so nothing mutable is shared but the
// status board below. A run that ends writes done.json beside its stats.csv; a resumed
// sweep skips those runs and continues every other one from its checkpoint (or afresh when
// it died before its first checkpoint).
//
// The summary is the accelerating-grokking table: per variant, the steps and optimisation
// seconds to reach a target (mean, sample standard deviation, min and max over seeds) and
// the speed-up over reference variants (ratio of means), in steps and in seconds. Seconds
// come twice: wall-clock, and CPU time of the run's thread, which a machine shared with
// other work inflates far less (for single-threaded runs, the fairer cost figure).
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "grokalign/run/checkpoint.hpp"
#include "grokalign/run/progress.hpp"

namespace grokalign::run {

struct SweepRun {
  std::string variant;
  std::uint64_t seed = 0;
  std::filesystem::path dir;  // OUT/<variant>/seed<k>
  std::string label() const { return fmt::format("{} seed {}", variant, seed); }
};

// How a run ended (done.json), or how far an unfinished one got.
struct RunOutcome {
  bool finished = false;    // ran to the target or to the cap
  bool reached = false;     // exceeded the target
  std::int64_t steps = 0;   // the step it was reached (else the last step run)
  double opt_seconds = 0;   // optimisation seconds up to `steps` (wall clock)
  double cpu_seconds = 0;   // the same, CPU time of the run's thread
  double final_metric = 0;  // the metric at `steps` (test accuracy)
  std::string error;        // the run stopped with this error
};

inline std::filesystem::path done_path(const std::filesystem::path& dir) {
  return dir / "done.json";
}

inline void write_outcome(const std::filesystem::path& dir, const RunOutcome& o) {
  const nlohmann::json j = {{"reached", o.reached},
                            {"steps", o.steps},
                            {"opt_seconds", o.opt_seconds},
                            {"cpu_seconds", o.cpu_seconds},
                            {"final_metric", o.final_metric}};
  detail::write_file_atomically(done_path(dir), j.dump(2) + "\n", "done.json");
}

inline std::optional<RunOutcome> read_outcome(const std::filesystem::path& dir) {
  std::ifstream in(done_path(dir));
  if (!in) return std::nullopt;
  try {
    const auto j = nlohmann::json::parse(in);
    RunOutcome o;
    o.finished = true;
    o.reached = j.at("reached").get<bool>();
    o.steps = j.at("steps").get<std::int64_t>();
    o.opt_seconds = j.at("opt_seconds").get<double>();
    o.cpu_seconds = j.value("cpu_seconds", 0.0);
    o.final_metric = j.at("final_metric").get<double>();
    return o;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;  // a damaged record: the run is redone from its checkpoint
  }
}

// What the running runs report, for the periodic status line. The only shared mutable
// state of a sweep.
class SweepStatus {
 public:
  explicit SweepStatus(std::size_t runs) : step_(runs, -1), metric_(runs, 0) {}
  void update(std::size_t run, std::int64_t step, double metric) {
    std::lock_guard lock(mutex_);
    step_[run] = step;
    metric_[run] = metric;
  }
  void clear(std::size_t run) { update(run, -1, 0); }
  // "baseline seed 0 @1200 (0.64), grokalign_ce seed 1 @300 (0.31)"
  std::string running(const std::vector<SweepRun>& runs, const std::string& metric) const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> parts;
    for (std::size_t i = 0; i < runs.size(); ++i)
      if (step_[i] >= 0)
        parts.push_back(
            fmt::format("{} @{} ({} {:.3f})", runs[i].label(), step_[i], metric, metric_[i]));
    return fmt::format("{}", fmt::join(parts, ", "));
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::int64_t> step_;
  std::vector<double> metric_;
};

struct SweepOptions {
  int jobs = 1;
  bool quiet = false;             // no periodic status line
  double status_interval = 60.0;  // seconds between status lines
  std::string metric = "test";    // names the metric in status lines
  std::string step_name = "epoch";
  // Where the workers draw the next run from: positions 0, 1, 2, ... among the runs left to
  // do. Empty: a counter of this process's own. Several processes sharing one counter
  // (distributed::SharedCounter) share the sweep out as each becomes free; each then runs
  // only some of the runs and returns outcomes for those alone.
  std::function<std::int64_t()> next = nullptr;
};

// Runs fn(run, index, status) for every run not already finished, `jobs` at a time, and
// returns every run's outcome (finished ones read from done.json; with a shared `next`,
// those this process ran). A run that throws is reported and recorded with its error; the
// others go on.
template <class Fn>
std::vector<RunOutcome> run_sweep(const std::vector<SweepRun>& runs, const SweepOptions& opt,
                                  Fn&& fn) {
  using Clock = std::chrono::steady_clock;
  std::vector<RunOutcome> out(runs.size());
  std::vector<std::size_t> todo;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    if (auto o = read_outcome(runs[i].dir)) {
      out[i] = *o;
      fmt::print("{}: finished before ({})\n", runs[i].label(),
                 o->reached ? fmt::format("target at {} {}", opt.step_name, o->steps)
                            : "target not reached");
    } else {
      todo.push_back(i);
    }
  }
  std::fflush(stdout);
  SweepStatus status(runs.size());
  std::atomic<std::int64_t> own_next{0};
  const auto draw = [&] { return opt.next ? opt.next() : own_next.fetch_add(1); };
  std::mutex mutex;
  std::condition_variable cv;
  std::size_t done = 0;
  int workers_left = 0;
  const auto start = Clock::now();
  auto worker = [&] {
    for (;;) {
      const std::int64_t drawn = draw();
      if (drawn < 0 || static_cast<std::size_t>(drawn) >= todo.size()) {
        std::lock_guard lock(mutex);
        --workers_left;
        cv.notify_all();
        return;
      }
      const std::size_t k = static_cast<std::size_t>(drawn);
      const std::size_t i = todo[k];
      RunOutcome o;
      try {
        o = fn(runs[i], i, status);
      } catch (const std::exception& e) {
        o.error = e.what();
      }
      status.clear(i);
      std::lock_guard lock(mutex);
      out[i] = o;
      ++done;
      if (!o.error.empty())
        fmt::print(stderr, "error: {}: {}\n", runs[i].label(), o.error);
      else
        fmt::print("{}: {} ({:.1f} s of optimisation, {:.1f} s CPU) [{}/{} done, {}]\n",
                   runs[i].label(),
                   o.reached ? fmt::format("{:.3f} {} at {} {}", o.final_metric, opt.metric,
                                           opt.step_name, o.steps)
                             : fmt::format("target not reached in {} {}s", o.steps, opt.step_name),
                   o.opt_seconds, o.cpu_seconds, done, todo.size(),
                   format_duration(std::chrono::duration<double>(Clock::now() - start).count()));
      std::fflush(stdout);
      cv.notify_all();
    }
  };
  const int jobs = std::max(1, std::min<int>(opt.jobs, static_cast<int>(todo.size())));
  std::vector<std::thread> pool;
  workers_left = todo.empty() ? 0 : jobs;
  for (int j = 0; j < jobs && !todo.empty(); ++j) pool.emplace_back(worker);
  {
    std::unique_lock lock(mutex);
    const auto interval = std::chrono::duration<double>(opt.status_interval);
    while (workers_left > 0) {
      const bool all = cv.wait_for(lock, interval, [&] { return workers_left == 0; });
      if (all || opt.quiet || todo.size() < 2) continue;
      const double t = std::chrono::duration<double>(Clock::now() - start).count();
      fmt::print(stderr, "[{}] {}/{} runs done; running: {}\n", format_duration(t), done,
                 todo.size(), status.running(runs, opt.metric));
    }
  }
  for (auto& t : pool) t.join();
  return out;
}

// ---- Summary --------------------------------------------------------------------------

struct Spread {
  int n = 0;
  double mean = NAN, sd = NAN, min = NAN, max = NAN;
};

inline Spread spread_of(const std::vector<double>& v) {
  Spread s;
  s.n = static_cast<int>(v.size());
  if (v.empty()) return s;
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / s.n;
  double ss = 0;
  for (double x : v) ss += (x - s.mean) * (x - s.mean);
  s.sd = s.n > 1 ? std::sqrt(ss / (s.n - 1)) : 0.0;
  s.min = *std::min_element(v.begin(), v.end());
  s.max = *std::max_element(v.begin(), v.end());
  return s;
}

struct VariantSummary {
  std::string variant;
  int runs = 0, finished = 0, reached = 0;
  Spread steps, seconds, cpu;  // over the runs that reached the target
  // Only when every run finished and reached the target is the mean a fair figure.
  bool complete() const { return runs > 0 && reached == runs; }
};

inline std::vector<VariantSummary> summarise(const std::vector<SweepRun>& runs,
                                             const std::vector<RunOutcome>& outcomes,
                                             const std::vector<std::string>& variants) {
  std::vector<VariantSummary> out;
  for (const auto& v : variants) {
    VariantSummary s;
    s.variant = v;
    std::vector<double> steps, secs, cpu;
    for (std::size_t i = 0; i < runs.size(); ++i) {
      if (runs[i].variant != v) continue;
      ++s.runs;
      s.finished += outcomes[i].finished;
      if (outcomes[i].finished && outcomes[i].reached) {
        ++s.reached;
        steps.push_back(static_cast<double>(outcomes[i].steps));
        secs.push_back(outcomes[i].opt_seconds);
        cpu.push_back(outcomes[i].cpu_seconds);
      }
    }
    s.steps = spread_of(steps);
    s.seconds = spread_of(secs);
    s.cpu = spread_of(cpu);
    out.push_back(s);
  }
  return out;
}

enum class Cost { kSteps, kSeconds, kCpuSeconds };
inline const Spread& cost_of(const VariantSummary& v, Cost c) {
  return c == Cost::kSteps ? v.steps : c == Cost::kSeconds ? v.seconds : v.cpu;
}

// reference mean / variant mean, when both variants reached the target in every run.
inline std::optional<double> speedup(const VariantSummary& ref, const VariantSummary& v, Cost c) {
  if (!ref.complete() || !v.complete()) return std::nullopt;
  const double a = cost_of(ref, c).mean, b = cost_of(v, c).mean;
  if (!(b > 0)) return std::nullopt;
  return a / b;
}

// The summary as a Markdown table (summary.md) and as CSV (summary.csv), with a speed-up
// column pair for each variant in `references` that the sweep ran.
struct SummaryTable {
  std::string markdown, csv;
};

inline SummaryTable summary_table(const std::vector<VariantSummary>& rows,
                                  const std::vector<std::string>& references,
                                  const std::string& step_name, const std::string& target) {
  std::vector<const VariantSummary*> refs;
  for (const auto& r : references)
    for (const auto& row : rows)
      if (row.variant == r) refs.push_back(&row);
  auto cell = [](const Spread& s, int digits) {
    if (s.n == 0) return std::string("-");
    return fmt::format("{:.{}f} ± {:.{}f} [{:.{}f}, {:.{}f}]", s.mean, digits, s.sd, digits, s.min,
                       digits, s.max, digits);
  };
  auto ratio = [](std::optional<double> r) {
    return r ? fmt::format("{:.2f}x", *r) : std::string("-");
  };
  auto csv_num = [](double x) { return std::isfinite(x) ? fmt::format("{}", x) : std::string(); };
  const Cost costs[3] = {Cost::kSteps, Cost::kSeconds, Cost::kCpuSeconds};
  const std::string names[3] = {step_name + "s", "seconds", "cpu_seconds"};
  std::string md = fmt::format(
      "| variant | runs reaching {} | {}s (mean ± sd [min, max]) | optimisation seconds, wall "
      "clock | optimisation seconds, CPU of the run's thread",
      target, step_name);
  std::string sep = "|---|---|---|---|---";
  std::string csv = "variant,runs,finished,reached";
  for (const auto& n : names) csv += fmt::format(",{0}_mean,{0}_sd,{0}_min,{0}_max", n);
  for (const auto* r : refs) {
    md += fmt::format(" | speed-up over {} ({}s / wall / CPU)", r->variant, step_name);
    sep += "|---";
    for (const auto& n : names) csv += fmt::format(",speedup_{}_vs_{}", n, r->variant);
  }
  md += " |\n" + sep + "|\n";
  csv += "\n";
  for (const auto& row : rows) {
    std::string reach = fmt::format("{}/{}", row.reached, row.runs);
    if (row.finished < row.runs) reach += fmt::format(" ({} unfinished)", row.runs - row.finished);
    md += fmt::format("| {} | {}", row.variant, reach);
    csv += fmt::format("{},{},{},{}", row.variant, row.runs, row.finished, row.reached);
    for (int c = 0; c < 3; ++c) {
      const Spread& s = cost_of(row, costs[c]);
      md += " | " + (row.reached               ? cell(s, c == 0 ? 0 : 1)
                     : row.finished < row.runs ? std::string("unfinished")
                                               : std::string("not reached"));
      csv += fmt::format(",{},{},{},{}", csv_num(s.mean), csv_num(s.sd), csv_num(s.min),
                         csv_num(s.max));
    }
    for (const auto* r : refs) {
      std::vector<std::string> parts;
      for (Cost c : costs) {
        const auto x = speedup(*r, row, c);
        parts.push_back(ratio(x));
        csv += ',';
        if (x) csv += csv_num(*x);
      }
      md += fmt::format(" | {}", fmt::join(parts, " / "));
    }
    md += " |\n";
    csv += "\n";
  }
  return {md, csv};
}

}  // namespace grokalign::run
