#pragma once
// A program run as several ranks (under mpirun) must fail as one job: a rank that throws
// while the others wait in a collective would leave them waiting forever. Two ways out:
//   - a step every rank takes together (opening the run's folder, say) agrees on whether
//     any rank failed (agree_on_failure); then every rank stops with AgreedFailure, the
//     failing rank printing why and the others silent, and the job ends cleanly;
//   - any other exception ends the whole job through MPI_Abort, naming the rank
//     (guarded_main does that).
// With one process both come down to the exception itself.
#include <algorithm>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>

#include "grokalign/distributed/communicator.hpp"
#include "grokalign/run/flags.hpp"

namespace grokalign::run {

// A failure every rank knows about: guarded_main prints it (unless `silent`) and returns
// `code` without aborting the job.
class AgreedFailure : public std::runtime_error {
 public:
  AgreedFailure(const std::string& what, int code, bool silent)
      : std::runtime_error(what), code_(code), silent_(silent) {}
  int code() const noexcept { return code_; }
  bool silent() const noexcept { return silent_; }

 private:
  int code_;
  bool silent_;
};

// The exit code of an exception, as guarded_main gives it: 2 for a flag that cannot be used,
// else 1.
inline int exit_code_of(const std::exception& e) {
  return dynamic_cast<const FlagError*>(&e) ? 2 : 1;
}

// Data-parallel, each of `ranks` ranks trains on its rows of every batch, so every batch of
// an epoch of n samples, the last (n mod batch) too, needs a row for each rank: a batch size
// that leaves one without is refused (FlagError on --batch_size, said once, before anything
// is written). `samples` names them in the message ("training digits").
inline void require_rows_for_every_rank(std::int64_t n, std::int64_t batch_size, int ranks,
                                        const std::string& samples) {
  if (n <= 0 || batch_size <= 0) return;  // the program's own checks say what is wrong
  const std::int64_t batch = std::min(batch_size, n), smallest = n % batch ? n % batch : batch;
  if (smallest < ranks)
    throw FlagError("--batch_size", std::to_string(batch_size) + " leaves a batch of " +
                                        std::to_string(smallest) + " of the " + std::to_string(n) +
                                        " " + samples + ", fewer than the " +
                                        std::to_string(ranks) + " ranks that share every batch");
}

// Runs `step` on every rank of `comm`, then agrees on whether it failed anywhere. With one
// rank an exception passes through unchanged. With several, if any rank failed every rank
// throws AgreedFailure: the lowest failing rank with its message (prefixed with its rank
// unless it is rank 0), every other rank silently.
template <class Step>
void agree_on_failure(const distributed::Communicator& comm, Step&& step) {
  if (comm.size() <= 1) {
    step();
    return;
  }
  std::string message;
  int code = 0;
  try {
    step();
  } catch (const std::exception& e) {
    message = e.what();
    code = exit_code_of(e);
  }
  const int me = comm.rank();
  const double first = comm.min(code ? double(me) : double(comm.size()));
  if (first >= comm.size()) return;
  const int worst = static_cast<int>(comm.max(double(code)));
  if (me == static_cast<int>(first))
    throw AgreedFailure(me == 0 ? message : "rank " + std::to_string(me) + ": " + message, code,
                        false);
  throw AgreedFailure("", worst, true);
}

}  // namespace grokalign::run
