// Replaces glibc's malloc family for this test binary (glibc supports replacing malloc by
// defining these functions in the program; each forwards to glibc's __libc_* entry point).
// Sanitizer builds replace malloc themselves, so this binary is not built with them.
#include "heap_counter.hpp"

#include <malloc.h>
#include <stdlib.h>

#include <atomic>
#include <cerrno>
#include <cstddef>

extern "C" {
void* __libc_malloc(size_t) noexcept;
void __libc_free(void*) noexcept;
void* __libc_calloc(size_t, size_t) noexcept;
void* __libc_realloc(void*, size_t) noexcept;
void* __libc_memalign(size_t, size_t) noexcept;
void* __libc_valloc(size_t) noexcept;
void* __libc_pvalloc(size_t) noexcept;
}

namespace heap_counter {
namespace {
// Constant-initialised, so usable by allocations made before static constructors run.
std::atomic<bool> counting{false};
std::atomic<bool> trap{false};
std::atomic<long> count{0};

inline void note() {
  if (counting.load(std::memory_order_relaxed)) {
    count.fetch_add(1, std::memory_order_relaxed);
    if (trap.load(std::memory_order_relaxed)) __builtin_trap();
  }
}
}  // namespace

void start() {
  const char* t = getenv("GROKALIGN_HEAP_TRAP");
  trap.store(t && t[0] == '1');
  count.store(0);
  counting.store(true);
}

long stop() {
  counting.store(false);
  return count.load();
}

}  // namespace heap_counter

extern "C" {
void* malloc(size_t n) noexcept {
  heap_counter::note();
  return __libc_malloc(n);
}
void free(void* p) noexcept {
  __libc_free(p);
}
void* calloc(size_t count, size_t size) noexcept {
  heap_counter::note();
  return __libc_calloc(count, size);
}
void* realloc(void* p, size_t n) noexcept {
  heap_counter::note();
  return __libc_realloc(p, n);
}
void* memalign(size_t alignment, size_t n) noexcept {
  heap_counter::note();
  return __libc_memalign(alignment, n);
}
void* aligned_alloc(size_t alignment, size_t n) noexcept {
  heap_counter::note();
  return __libc_memalign(alignment, n);
}
int posix_memalign(void** out, size_t alignment, size_t n) noexcept {
  heap_counter::note();
  if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0) return EINVAL;
  void* p = __libc_memalign(alignment, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
void* valloc(size_t n) noexcept {
  heap_counter::note();
  return __libc_valloc(n);
}
void* pvalloc(size_t n) noexcept {
  heap_counter::note();
  return __libc_pvalloc(n);
}
}
