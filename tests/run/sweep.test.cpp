// run_sweep: every run not finished before runs exactly once, whether this process's own
// workers draw the runs or several processes share the sweep out through one counter
// (SweepOptions::next; under mpirun a distributed::SharedCounter).
#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <thread>
#include <vector>

#include "../io/temp_dir.hpp"
#include "grokalign/run/sweep.hpp"

namespace {

namespace run = grokalign::run;

std::vector<run::SweepRun> six_runs(const std::filesystem::path& root) {
  std::vector<run::SweepRun> runs;
  for (std::uint64_t seed = 0; seed < 6; ++seed)
    runs.push_back({"v", seed, root / "v" / ("seed" + std::to_string(seed))});
  return runs;
}

run::RunOutcome ran(std::int64_t steps) {
  run::RunOutcome o;
  o.finished = o.reached = true;
  o.steps = steps;
  return o;
}

}  // namespace

TEST_CASE("run_sweep runs every unfinished run once and skips finished ones", "[run][sweep]") {
  grokalign_test::TempDir dir;
  const auto runs = six_runs(dir.path());
  std::filesystem::create_directories(runs[2].dir);
  run::write_outcome(runs[2].dir, ran(77));  // finished before
  for (int jobs : {1, 3}) {
    std::vector<std::atomic<int>> times(runs.size());
    const auto out = run::run_sweep(runs, {.jobs = jobs, .quiet = true},
                                    [&](const run::SweepRun&, std::size_t i, run::SweepStatus&) {
                                      ++times[i];
                                      return ran(static_cast<std::int64_t>(i));
                                    });
    for (std::size_t i = 0; i < runs.size(); ++i) {
      CHECK(times[i] == (i == 2 ? 0 : 1));
      CHECK(out[i].steps == (i == 2 ? 77 : static_cast<std::int64_t>(i)));
    }
  }
}

TEST_CASE("processes sharing one counter share a sweep out, each run once", "[run][sweep]") {
  grokalign_test::TempDir dir;
  const auto runs = six_runs(dir.path());
  std::atomic<std::int64_t> shared{0};
  std::vector<std::atomic<int>> times(runs.size());
  std::vector<int> ran_by(runs.size(), -1);
  std::mutex m;
  std::vector<std::vector<run::RunOutcome>> outs(2);
  // Process 1 is slow: its first run lasts until process 0 has drawn past the last run. A
  // fixed share (run i on process i mod 2) would give it three runs; drawn as each becomes
  // free, it runs at most the one it drew first.
  auto process = [&](int p) {
    outs[p] = run::run_sweep(
        runs, {.jobs = 1, .quiet = true, .next = [&] { return shared.fetch_add(1); }},
        [&](const run::SweepRun&, std::size_t i, run::SweepStatus&) {
          ++times[i];
          {
            std::lock_guard lock(m);
            ran_by[i] = p;
          }
          while (p == 1 && shared.load() <= static_cast<std::int64_t>(runs.size()))
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
          return ran(static_cast<std::int64_t>(i));
        });
  };
  std::thread a(process, 0), b(process, 1);
  a.join();
  b.join();
  int by_first = 0;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    CHECK(times[i] == 1);
    REQUIRE(ran_by[i] >= 0);
    by_first += ran_by[i] == 0;
    // Each process holds the outcomes of its own runs, and no others.
    CHECK(outs[ran_by[i]][i].finished);
    CHECK_FALSE(outs[1 - ran_by[i]][i].finished);
  }
  CHECK(by_first >= 5);
}
