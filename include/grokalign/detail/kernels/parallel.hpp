#pragma once
// When and how kernels use OpenMP threads. Large loops are split over the threads; small
// ones stay serial (thread start-up would cost more than the work). A parallel region is
// never opened for a single thread: besides being useless, libgomp allocates (and frees) a
// fresh team for every one-thread region, which would put heap traffic in every step.
#include "grokalign/core/shape.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace grokalign::kernels {

inline constexpr index_t kParallelGrain = 1 << 15;

// Threads a kernel may use here: 1 inside another parallel region or without OpenMP.
inline int available_threads() {
#if defined(_OPENMP)
  return omp_in_parallel() ? 1 : omp_get_max_threads();
#else
  return 1;
#endif
}

template <class F>
void parallel_for(index_t n, F&& f) {
#if defined(_OPENMP)
  if (n >= kParallelGrain && available_threads() > 1) {
#pragma omp parallel for schedule(static)
    for (index_t i = 0; i < n; ++i) f(i);
    return;
  }
#endif
  for (index_t i = 0; i < n; ++i) f(i);
}

}  // namespace grokalign::kernels
