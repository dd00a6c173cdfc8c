// What a stopping signal says (issue 13: a job ended because another rank died, or a batch
// system's time limit): the runs the program had open, where they are and the checkpoint
// --resume would continue from, and then the program still ends by that signal.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "../io/temp_dir.hpp"
#include "grokalign/run/run.hpp"

namespace {

namespace run = grokalign::run;

// Runs `child` in a forked process whose standard error goes to `err`, and returns its wait
// status.
template <class Child>
int in_child(const std::filesystem::path& err, Child&& child) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (!std::freopen(err.c_str(), "w", stderr)) ::_exit(90);
    // As a program starts: the default actions (the test runner handles signals itself).
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::signal(sig, SIG_DFL);
    try {
      child();
    } catch (...) {
      ::_exit(91);
    }
    ::_exit(92);  // the signal should have ended it
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

run::RunSpec spec() {
  return {.program = "stop_note_test", .columns = {"step", "x"}, .total_steps = 10};
}

}  // namespace

TEST_CASE("a stopping signal names the open run and its last checkpoint, then ends the program",
          "[run][resume]") {
  grokalign_test::TempDir dir;
  const auto out = dir.path() / "out";
  const auto err = dir.path() / "stderr.txt";
  for (const int sig : {SIGTERM, SIGINT}) {
    std::filesystem::remove_all(out);
    const int status = in_child(err, [&] {
      run::CommonOptions common;
      common.out = out.string();
      common.quiet = true;
      run::Run r(common, spec(), out);
      run::Checkpoint c;
      r.save_checkpoint(c, 3);
      r.save_checkpoint(c, 7);
      ::raise(sig);
    });
    INFO(slurp(err));
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == sig);
    const std::string said = slurp(err);
    CHECK(said.find("stopped by signal") != std::string::npos);
    CHECK(said.find("stop_note_test: the run in " + out.string() +
                    " keeps its checkpoint of step 7") != std::string::npos);
    CHECK(said.find("step 3") == std::string::npos);  // the latest checkpoint only
  }
}

TEST_CASE("a run closed before the signal is not mentioned; one without a checkpoint says so",
          "[run][resume]") {
  grokalign_test::TempDir dir;
  const auto err = dir.path() / "stderr.txt";
  const int status = in_child(err, [&] {
    run::CommonOptions common;
    common.quiet = true;
    {
      common.out = (dir.path() / "closed").string();
      run::Run closed(common, spec(), dir.path() / "closed");
    }
    common.out = (dir.path() / "open").string();
    run::Run open(common, spec(), dir.path() / "open");
    ::raise(SIGTERM);
  });
  REQUIRE(WIFSIGNALED(status));
  const std::string said = slurp(err);
  INFO(said);
  CHECK(said.find("closed") == std::string::npos);
  CHECK(said.find((dir.path() / "open").string() + " has no checkpoint yet") != std::string::npos);
}

TEST_CASE("a handler the program installed itself is left alone", "[run]") {
  grokalign_test::TempDir dir;
  const auto err = dir.path() / "stderr.txt";
  const int status = in_child(err, [&] {
    // Installed before any Run: a Run must not replace it.
    ::signal(SIGTERM, [](int) { ::_exit(42); });
    run::CommonOptions common;
    common.quiet = true;
    common.out = (dir.path() / "r").string();
    run::Run r(common, spec(), dir.path() / "r");
    ::raise(SIGTERM);
  });
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 42);
}

TEST_CASE("a process whose notes are all empty says nothing when stopped", "[run]") {
  grokalign_test::TempDir dir;
  const auto err = dir.path() / "stderr.txt";
  // A rank that writes no run holds a note it never sets.
  const int status = in_child(err, [] {
    run::StopNote quiet;
    ::raise(SIGTERM);
  });
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGTERM);
  CHECK(slurp(err).empty());
}
