#pragma once
// Per-thread reusable bookkeeping for graph passes. A steady-state training step runs the
// same passes over graphs of the same size every time, so vectors that keep their capacity
// between passes make the step free of heap allocation.
#include <cstddef>
#include <memory>
#include <vector>

namespace grokalign::detail {

// Lends the calling thread a scratch object of type S for the lifetime of the lease. Leases
// nest (a pass may start inside another, e.g. a transform called from a rule), each level
// getting its own object. S::clear() runs on return, so no scratch keeps tensors or graph
// nodes alive after a pass, while its vectors keep their capacity for the next one.
template <class S>
class ScratchLease {
 public:
  ScratchLease() {
    auto& slots = pool();
    std::size_t& level = depth();
    if (level == slots.size()) slots.push_back(std::make_unique<S>());
    scratch_ = slots[level].get();
    ++level;
  }
  ~ScratchLease() {
    scratch_->clear();
    --depth();
  }
  ScratchLease(const ScratchLease&) = delete;
  ScratchLease& operator=(const ScratchLease&) = delete;

  S& operator*() const noexcept { return *scratch_; }
  S* operator->() const noexcept { return scratch_; }

 private:
  static std::vector<std::unique_ptr<S>>& pool() {
    thread_local std::vector<std::unique_ptr<S>> slots;
    return slots;
  }
  static std::size_t& depth() {
    thread_local std::size_t level = 0;
    return level;
  }
  S* scratch_;
};

}  // namespace grokalign::detail
