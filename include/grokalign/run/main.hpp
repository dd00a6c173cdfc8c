#pragma once
// What every program's main() shares: errors become one line on stderr and an exit code
// (2 for a bad flag, 1 for anything else) instead of a crash, and --dtype picks the scalar
// type the program's templated body runs with.
//
// Under mpirun (built with grokalign::distributed) guarded_main also starts MPI for the
// program's lifetime, silences the standard output of every rank but 0 (so a program prints
// once), and turns an exception on one rank into the end of the whole job, naming the rank,
// unless every rank already agreed on it (job.hpp) or it is a flag every rank refuses.
#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <optional>
#include <string>

#include "grokalign/distributed/communicator.hpp"
#include "grokalign/run/flags.hpp"
#include "grokalign/run/job.hpp"

namespace grokalign::run {

namespace detail {
// Prints and returns the exit code; with several ranks ends every rank of the job instead.
inline int fail(const std::exception& e, int code) {
  const distributed::Communicator world;
  if (world.size() > 1) world.abort(fmt::format("error: {}", e.what()), code);
  fmt::print(stderr, "error: {}\n", e.what());
  return code;
}
}  // namespace detail

template <class Body>
int guarded_main(Body&& body) {
  std::optional<distributed::Environment> mpi;
  try {
    mpi.emplace();  // MPI when a launcher started this program; nothing otherwise
    if (const distributed::Communicator world; world.size() > 1 && !world.is_root())
      if (!std::freopen("/dev/null", "w", stdout))
        throw Error("guarded_main",
                    "cannot silence the standard output of rank " + std::to_string(world.rank()));
    return body();
  } catch (const AgreedFailure& e) {
    if (!e.silent()) fmt::print(stderr, "error: {}\n", e.what());
    return e.code();
  } catch (const FlagError& e) {
    // Every rank parses the same command line, so every rank refuses a flag alike: rank 0
    // says why, and the job ends without an abort.
    if (const distributed::Communicator world; world.is_root())
      fmt::print(stderr, "error: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    return detail::fail(e, exit_code_of(e));
  }
}

// Calls body.template operator()<double>() or <float>() as --dtype says.
template <class Body>
int with_dtype(const std::string& dtype, Body&& body) {
  if (dtype == "f64") return body.template operator()<double>();
  if (dtype == "f32") return body.template operator()<float>();
  throw FlagError("--dtype", "must be f64 or f32 (got " + dtype + ")");
}

}  // namespace grokalign::run
