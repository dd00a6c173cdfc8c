// A process killed while writing a checkpoint leaves the previous one whole (issue 11).
// A child process writes checkpoints in a loop, each one self-consistent (every value and
// the step in the metadata equal the iteration); the parent SIGKILLs it at random moments,
// mid-write most of the time since writing is what the child does, and then the file on
// disk must load and be one of the checkpoints written, whole.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <random>
#include <thread>

#include "../io/temp_dir.hpp"
#include "grokalign/run/checkpoint.hpp"

namespace {

using grokalign::run::Checkpoint;

[[noreturn]] void write_checkpoints_forever(const std::filesystem::path& path, std::int64_t first) {
  // 2 MB per checkpoint: long enough to write that most kills land inside a write.
  auto t = grokalign::Tensor<double>::empty({256, 1024});
  for (std::int64_t i = first;; ++i) {
    for (grokalign::index_t k = 0; k < t.numel(); ++k) t.data()[k] = static_cast<double>(i);
    Checkpoint c;
    c.meta()["step"] = i;
    c.put("weights", t);
    c.save(path);
  }
}

}  // namespace

TEST_CASE("a checkpoint write killed at any moment leaves the previous checkpoint", "[resume]") {
  grokalign_test::TempDir dir;
  const auto path = dir.path() / "checkpoint.bin";
  std::mt19937 rng(12345);
  std::int64_t last_step = 0;
  int kills = 0;
  for (int round = 0; round < 8; ++round) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      try {
        write_checkpoints_forever(path, last_step + 1);
      } catch (...) {
        ::_exit(3);
      }
    }
    std::this_thread::sleep_for(std::chrono::microseconds(2000 + rng() % 30000));
    REQUIRE(::kill(pid, SIGKILL) == 0);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    // Killed, not exited: had the child failed, it would have exited with 3.
    REQUIRE(WIFSIGNALED(status));
    ++kills;
    if (!std::filesystem::exists(path)) continue;  // killed before its first rename
    const Checkpoint c = Checkpoint::load(path);
    const std::int64_t step = c.meta().at("step").get<std::int64_t>();
    CHECK(step >= last_step);
    const auto w = c.tensor<double>("weights");
    REQUIRE(w.numel() == 256 * 1024);
    for (grokalign::index_t k = 0; k < w.numel(); k += 4099)
      REQUIRE(w.data()[k] == static_cast<double>(step));
    last_step = step;
  }
  CHECK(kills == 8);
  CHECK(last_step > 0);
}
