#pragma once
// The MPI side of data-parallel training: an RAII Environment (MPI_Init_thread /
// MPI_Finalize) and a Communicator (rank, size, collectives, abort naming the rank).
//
// MPI is optional. Built with grokalign::distributed (CMake, which defines
// GROKALIGN_HAVE_MPI=1 and links MPI), these wrap MPI, which the Environment starts only when
// an MPI launcher (mpirun, mpiexec, srun) started the program: run plainly, the program does
// not touch MPI at all (no MPI_Init, no daemon forked for a singleton, nothing left behind
// when it is killed). Without MPI started, or built without it, they are one process (rank 0
// of 1, every collective the identity), so a program runs unchanged on one machine; but a
// program built without MPI and started by a launcher as one of several ranks, or asked for
// a distributed feature through require_mpi(), stops with an error saying it was built
// without MPI, instead of silently running N independent copies.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "grokalign/core/error.hpp"

#if defined(GROKALIGN_HAVE_MPI)
// The C API only: the C++ bindings, deprecated since MPI-2.2, are not needed.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>
#endif

namespace grokalign::distributed {

#if defined(GROKALIGN_HAVE_MPI)
inline constexpr bool kHaveMpi = true;
#else
inline constexpr bool kHaveMpi = false;
#endif

// Throws when this build has no MPI; `feature` names what needed it, e.g. "--distributed".
inline void require_mpi(const std::string& feature) {
  if constexpr (!kHaveMpi)
    throw Error("distributed", feature +
                                   " needs MPI, but this program was built without it "
                                   "(GROKALIGN_HAVE_MPI is not defined); install Open MPI "
                                   "(Debian: libopenmpi-dev openmpi-bin), reconfigure with "
                                   "-DGROKALIGN_USE_MPI=ON and link grokalign::distributed");
}

// Whether an MPI launcher started this process: Open MPI's mpirun, MPICH's Hydra and Slurm's
// srun (PMI-2 or PMIx) announce themselves in the environment.
inline bool started_by_launcher() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_RANK", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(var)) return true;
  return false;
}

// The world size an MPI launcher announced in the environment (Open MPI, MPICH/Hydra,
// Slurm's PMI), or 1 when none did.
inline int launcher_world_size() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"}) {
    if (const char* v = std::getenv(var)) {
      const long n = std::strtol(v, nullptr, 10);
      if (n > 1) return static_cast<int>(n);
    }
  }
  return 1;
}

// This process's rank as an MPI launcher announced it in the environment, or 0 when none
// did; readable before (and without) MPI. A program with nothing to share out over ranks (a
// tour) returns at once when it is not 0, so that under mpirun it runs once.
inline int launcher_rank() {
  for (const char* var : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"}) {
    if (const char* v = std::getenv(var)) {
      const long r = std::strtol(v, nullptr, 10);
      if (r > 0) return static_cast<int>(r);
      return 0;
    }
  }
  return 0;
}

namespace detail {

#if defined(GROKALIGN_HAVE_MPI)
template <class T>
MPI_Datatype mpi_type() {
  if constexpr (std::is_same_v<T, double>)
    return MPI_DOUBLE;
  else if constexpr (std::is_same_v<T, float>)
    return MPI_FLOAT;
  else if constexpr (std::is_same_v<T, std::int64_t>)
    return MPI_INT64_T;
  else if constexpr (std::is_same_v<T, int>)
    return MPI_INT;
  else
    static_assert(sizeof(T) == 0, "no MPI datatype for this type");
}

inline void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw Error("distributed", std::string(call) + " failed: " + std::string(text, len));
}
#endif

}  // namespace detail

enum class ReduceOp { kSum, kMax, kMin };

// A communicator; the default one is MPI_COMM_WORLD. Not owning: MPI frees the world.
class Communicator {
 public:
  // This process alone, rank 0 of 1, without calling MPI at all: every collective is the
  // identity. For work a rank does on its own (a sweep's whole runs spread over ranks), from
  // any thread at once: MPI_THREAD_SERIALIZED would forbid concurrent calls even on
  // MPI_COMM_SELF. abort() still ends the whole job.
  static Communicator local() {
    Communicator c;
    c.local_ = true;
    return c;
  }
  bool is_local() const noexcept { return local_; }
#if defined(GROKALIGN_HAVE_MPI)
  Communicator() : comm_(MPI_COMM_WORLD) {}
  explicit Communicator(MPI_Comm comm) : comm_(comm) {}
  MPI_Comm native() const noexcept {
    return comm_;
  }
  // False before MPI_Init and after MPI_Finalize: then this is one process.
  static bool active() {
    int initialised = 0, finalised = 0;
    MPI_Initialized(&initialised);
    MPI_Finalized(&finalised);
    return initialised && !finalised;
  }
  int rank() const {
    int r = 0;
    if (talks()) detail::check(MPI_Comm_rank(comm_, &r), "MPI_Comm_rank");
    return r;
  }
  int size() const {
    int n = 1;
    if (talks()) detail::check(MPI_Comm_size(comm_, &n), "MPI_Comm_size");
    return n;
  }
#else
  static bool active() noexcept {
    return false;
  }
  int rank() const noexcept {
    return 0;
  }
  int size() const noexcept {
    return 1;
  }
#endif
  bool is_root() const {
    return rank() == 0;
  }

  // Elementwise reduction of data[0..n) over every rank, in place; every rank gets the result.
  template <class T>
  void allreduce(T* data, std::int64_t n, ReduceOp op = ReduceOp::kSum) const {
#if defined(GROKALIGN_HAVE_MPI)
    if (!talks()) return;
    const MPI_Op mop = op == ReduceOp::kSum ? MPI_SUM : op == ReduceOp::kMax ? MPI_MAX : MPI_MIN;
    // MPI counts are int: a reduction of more than 2^31 - 1 elements goes in pieces.
    constexpr std::int64_t kMaxCount = 1 << 30;
    for (std::int64_t at = 0; at < n; at += kMaxCount) {
      const int count = static_cast<int>(std::min(kMaxCount, n - at));
      detail::check(
          MPI_Allreduce(MPI_IN_PLACE, data + at, count, detail::mpi_type<T>(), mop, comm_),
          "MPI_Allreduce");
    }
#else
    (void)data, (void)n, (void)op;
#endif
  }
  // data[0..n) of rank `root` copied to every rank.
  template <class T>
  void broadcast(T* data, std::int64_t n, int root = 0) const {
#if defined(GROKALIGN_HAVE_MPI)
    if (!talks()) return;
    constexpr std::int64_t kMaxCount = 1 << 30;
    for (std::int64_t at = 0; at < n; at += kMaxCount) {
      const int count = static_cast<int>(std::min(kMaxCount, n - at));
      detail::check(MPI_Bcast(data + at, count, detail::mpi_type<T>(), root, comm_), "MPI_Bcast");
    }
#else
    (void)data, (void)n, (void)root;
#endif
  }
  void barrier() const {
#if defined(GROKALIGN_HAVE_MPI)
    if (talks()) detail::check(MPI_Barrier(comm_), "MPI_Barrier");
#endif
  }

  // Scalar metrics: the sum, mean, max or min of one value per rank, on every rank.
  double sum(double v) const {
    allreduce(&v, 1, ReduceOp::kSum);
    return v;
  }
  double mean(double v) const {
    return sum(v) / static_cast<double>(size());
  }
  double max(double v) const {
    allreduce(&v, 1, ReduceOp::kMax);
    return v;
  }
  double min(double v) const {
    allreduce(&v, 1, ReduceOp::kMin);
    return v;
  }

  // Ends every rank of the job, after printing which rank gave up and why. For a failure on
  // one rank that the others cannot know about (they would wait forever in the next
  // collective): an exception on one rank must end the job, not hang it.
  [[noreturn]] void abort(const std::string& message, int code = 1) const {
    const Communicator everyone = local_ ? Communicator() : *this;
    std::fprintf(stderr, "grokalign: rank %d of %d: %s\n", everyone.rank(), everyone.size(),
                 message.c_str());
    std::fflush(stderr);
#if defined(GROKALIGN_HAVE_MPI)
    if (active()) MPI_Abort(everyone.comm_, code);
#endif
    std::exit(code);
  }

 private:
  // Whether collectives reach other ranks: MPI is running and this is not local().
  bool talks() const {
    return active() && !local_;
  }

#if defined(GROKALIGN_HAVE_MPI)
  MPI_Comm comm_;
#endif
  bool local_ = false;
};

// MPI for the lifetime of this object: construct one first thing in main(). Initialises MPI
// when a launcher started the program (or always, with Start::kAlways), unless something else
// already did (then leaves finalising to it). MPI_THREAD_SERIALIZED:
// a rank may call MPI from a thread other than main's (a sweep's worker thread), one thread
// at a time; OpenMP threads inside a rank never call it.
class Environment {
 public:
  enum class Start { kWhenLaunched, kAlways };
  explicit Environment(int* argc = nullptr, char*** argv = nullptr,
                       Start start = Start::kWhenLaunched) {
#if defined(GROKALIGN_HAVE_MPI)
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised && (start == Start::kAlways || started_by_launcher())) {
      int provided = 0;
      detail::check(MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided),
                    "MPI_Init_thread");
      owns_ = true;
      if (provided < MPI_THREAD_SERIALIZED)
        Communicator().abort("this MPI library does not support MPI_THREAD_SERIALIZED");
    }
#else
    (void)argc, (void)argv, (void)start;
    if (const int n = launcher_world_size(); n > 1)
      require_mpi("running as one of " + std::to_string(n) + " ranks (started by mpirun/srun)");
#endif
  }
  ~Environment() {
#if defined(GROKALIGN_HAVE_MPI)
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (owns_ && !finalised) MPI_Finalize();
#endif
  }
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

  Communicator world() const {
    return Communicator();
  }

 private:
  [[maybe_unused]] bool owns_ = false;
};

}  // namespace grokalign::distributed
