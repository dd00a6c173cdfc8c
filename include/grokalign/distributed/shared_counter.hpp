#pragma once
// A counter every rank draws from: next() returns 0, 1, 2, ... across the whole job, each
// value to exactly one caller, whichever rank or thread asks first. For handing out work as
// ranks become free (a sweep's runs) instead of fixing each rank's share in advance.
//
// One int64 in an MPI window on rank 0, advanced with MPI_Fetch_and_op under a shared
// passive-target lock: no rank has to take part when another draws. On one machine (shared
// memory) the draw is an atomic add; over a network whose MPI lacks hardware atomics the
// draw may wait until rank 0 next enters MPI (docs/scaling.md). Construction and destruction
// are collective: every rank of the communicator must take them. With one process (or a
// Communicator::local()) it is a plain atomic counter.
#include <atomic>
#include <cstdint>
#include <mutex>

#include "grokalign/distributed/communicator.hpp"

namespace grokalign::distributed {

class SharedCounter {
 public:
  explicit SharedCounter(const Communicator& comm = {}) : comm_(comm) {
#if defined(GROKALIGN_HAVE_MPI)
    shared_ = comm_.size() > 1;
    if (shared_) {
      const MPI_Aint bytes = comm_.rank() == 0 ? sizeof(std::int64_t) : 0;
      detail::check(MPI_Win_allocate(bytes, sizeof(std::int64_t), MPI_INFO_NULL, comm_.native(),
                                     &base_, &win_),
                    "MPI_Win_allocate");
      if (comm_.rank() == 0) *base_ = 0;
      comm_.barrier();  // rank 0's zero is in place before anyone draws
    }
#endif
  }
  ~SharedCounter() {
#if defined(GROKALIGN_HAVE_MPI)
    if (shared_ && Communicator::active()) MPI_Win_free(&win_);
#endif
  }
  SharedCounter(const SharedCounter&) = delete;
  SharedCounter& operator=(const SharedCounter&) = delete;

  // The next value; from any thread (draws of one rank are serialised: MPI_THREAD_SERIALIZED).
  std::int64_t next() {
#if defined(GROKALIGN_HAVE_MPI)
    if (shared_) {
      const std::lock_guard<std::mutex> lock(mutex_);
      const std::int64_t one = 1;
      std::int64_t got = 0;
      detail::check(MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, win_), "MPI_Win_lock");
      detail::check(MPI_Fetch_and_op(&one, &got, MPI_INT64_T, 0, 0, MPI_SUM, win_),
                    "MPI_Fetch_and_op");
      detail::check(MPI_Win_unlock(0, win_), "MPI_Win_unlock");
      return got;
    }
#endif
    return local_.fetch_add(1);
  }

 private:
  Communicator comm_;
  std::atomic<std::int64_t> local_{0};
#if defined(GROKALIGN_HAVE_MPI)
  bool shared_ = false;
  std::int64_t* base_ = nullptr;
  MPI_Win win_ = MPI_WIN_NULL;
  std::mutex mutex_;
#endif
};

}  // namespace grokalign::distributed
