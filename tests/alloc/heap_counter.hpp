#pragma once
// Counts every heap allocation made by the process (any thread, any allocator entry point:
// malloc, calloc, realloc, aligned_alloc, posix_memalign, memalign, valloc, pvalloc, and so
// operator new, Eigen's aligned_malloc and the library's block cache) between start() and
// stop(). heap_counter.cpp replaces glibc's malloc family for the binary that links it; it
// forwards to glibc's own implementation, so only the counting is added.
//
// Set GROKALIGN_HEAP_TRAP=1 to stop the program at the first counted allocation, so that a
// debugger shows who allocated.
namespace heap_counter {

void start();
long stop();  // allocations counted since start()

// Counts allocations over its lifetime.
class Scope {
 public:
  Scope() { start(); }
  ~Scope() {
    if (!stopped_) stop();
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  long count() {
    stopped_ = true;
    return stop();
  }

 private:
  bool stopped_ = false;
};

}  // namespace heap_counter
