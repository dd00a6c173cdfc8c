#pragma once
// Memory reuse for training loops. A training step creates and frees the same set of
// buffers every iteration; caching freed blocks per size class (as PyTorch's caching
// allocator does) lets a steady-state step run without touching the system heap.
//
// Each block is a separate aligned malloc, so a block freed on another thread than the one
// that allocated it simply joins that thread's cache: no arena bookkeeping is shared.
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <vector>

namespace grokalign {
namespace detail {

inline constexpr std::size_t kAlignment = 64;  // one cache line; enough for AVX-512 loads

class BlockCache {
 public:
  static constexpr int kClasses = 48;
  // What one thread's cache may hold. Any number of blocks of a class is kept (a graph has
  // hundreds of nodes of one size, all freed together at the end of a step, and all needed
  // again by the next), but past this total a freed block goes back to the system, so a
  // one-off huge temporary does not pin memory forever.
  static constexpr std::size_t kMaxCachedBytes = std::size_t{1} << 30;

  ~BlockCache() {
    for (auto& list : free_)
      for (void* p : list) std::free(p);
  }

  void* allocate(std::size_t bytes) {
    const int c = size_class(bytes);
    auto& list = free_[c];
    if (!list.empty()) {
      void* p = list.back();
      list.pop_back();
      cached_bytes_ -= class_bytes(c);
      return p;
    }
    void* p = std::aligned_alloc(kAlignment, class_bytes(c));
    if (!p) throw std::bad_alloc();
    return p;
  }

  void deallocate(void* p, std::size_t bytes) noexcept {
    const int c = size_class(bytes);
    auto& list = free_[c];
    if (cached_bytes_ + class_bytes(c) > kMaxCachedBytes) {
      std::free(p);
      return;
    }
    try {
      list.push_back(p);
      cached_bytes_ += class_bytes(c);
    } catch (...) {
      std::free(p);
    }
  }

  // Frees every cached block (e.g. between experiments that use very different sizes).
  void release_all() noexcept {
    for (auto& list : free_) {
      for (void* p : list) std::free(p);
      list.clear();
    }
    cached_bytes_ = 0;
  }

  // Size classes: powers of two from 128 bytes up, each split in two (x and 1.5x) so that
  // rounding wastes at most a third.
  static int size_class(std::size_t bytes) noexcept {
    int c = 0;
    while (c < kClasses - 1 && class_bytes_of(c) < bytes) ++c;
    return c;
  }
  static std::size_t class_bytes(int c) noexcept { return class_bytes_of(c); }

 private:
  static constexpr std::size_t class_bytes_of(int c) noexcept {
    // Starting at 128 keeps every class a multiple of the alignment, as aligned_alloc needs.
    const std::size_t base = std::size_t{128} << (c / 2);
    return (c % 2 == 0) ? base : base + base / 2;
  }
  std::vector<void*> free_[kClasses];
  std::size_t cached_bytes_ = 0;
};

// Thread-local objects die before static ones, and a static Tensor (or one owned by another
// thread-local) may be freed after this thread's cache is gone. A trivially destructible
// flag records the cache's life so such late frees go straight to the system allocator.
enum class CacheState : unsigned char { kUnborn, kAlive, kDead };
inline CacheState& cache_state() noexcept {
  thread_local CacheState state = CacheState::kUnborn;
  return state;
}

struct OwnedBlockCache : BlockCache {
  OwnedBlockCache() { cache_state() = CacheState::kAlive; }
  ~OwnedBlockCache() { cache_state() = CacheState::kDead; }
};

inline BlockCache& block_cache() {
  thread_local OwnedBlockCache cache;
  return cache;
}

inline std::size_t rounded_bytes(std::size_t bytes) {
  return (bytes + kAlignment - 1) / kAlignment * kAlignment;
}

inline void* pooled_allocate(std::size_t bytes) {
  if (bytes > BlockCache::class_bytes(BlockCache::kClasses - 1) ||
      cache_state() == CacheState::kDead) {
    // Sized to the class so that a block made here may later join a live cache.
    const std::size_t n = bytes > BlockCache::class_bytes(BlockCache::kClasses - 1)
                              ? rounded_bytes(bytes)
                              : BlockCache::class_bytes(BlockCache::size_class(bytes));
    void* p = std::aligned_alloc(kAlignment, n);
    if (!p) throw std::bad_alloc();
    return p;
  }
  return block_cache().allocate(bytes);
}
inline void pooled_deallocate(void* p, std::size_t bytes) noexcept {
  if (!p) return;
  if (bytes > BlockCache::class_bytes(BlockCache::kClasses - 1) ||
      cache_state() == CacheState::kDead) {
    std::free(p);
    return;
  }
  block_cache().deallocate(p, bytes);
}

// Intrusive reference counting with deferred destruction. Destroying the last handle of a
// long graph would otherwise recurse once per node (node -> input -> node ...) and overflow
// the stack; instead objects whose count drops to zero while another destruction is running
// are queued and destroyed by the outermost call, one at a time.
class RefCounted {
 public:
  RefCounted() = default;
  RefCounted(const RefCounted&) = delete;
  RefCounted& operator=(const RefCounted&) = delete;
  virtual ~RefCounted() = default;

  void retain() const noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() const noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy_deferred(this);
  }
  long use_count() const noexcept { return refs_.load(std::memory_order_relaxed); }

  // Objects are allocated from the block cache: graph nodes are created every step.
  static void* operator new(std::size_t bytes) { return pooled_allocate(bytes); }
  static void operator delete(void* p, std::size_t bytes) noexcept { pooled_deallocate(p, bytes); }

 private:
  // The queue of objects waiting for destruction on this thread. Like the block cache it
  // may be gone when a static handle is released at exit; then we destroy directly.
  struct DeferredQueue {
    std::vector<const RefCounted*> items;
    bool draining = false;
    DeferredQueue() { queue_state() = CacheState::kAlive; }
    ~DeferredQueue() { queue_state() = CacheState::kDead; }
  };
  static CacheState& queue_state() noexcept {
    thread_local CacheState state = CacheState::kUnborn;
    return state;
  }
  static void destroy_deferred(const RefCounted* obj) noexcept {
    if (queue_state() == CacheState::kDead) {
      delete obj;
      return;
    }
    thread_local DeferredQueue queue;
    if (queue.draining) {
      try {
        queue.items.push_back(obj);
        return;
      } catch (...) {
        // No memory for the queue: fall back to direct (recursive) destruction.
      }
      delete obj;
      return;
    }
    queue.draining = true;
    delete obj;
    while (!queue.items.empty()) {
      const RefCounted* next = queue.items.back();
      queue.items.pop_back();
      delete next;
    }
    queue.draining = false;
  }

  mutable std::atomic<long> refs_{0};
};

// Minimal intrusive smart pointer for RefCounted objects.
template <class U>
class Ref {
 public:
  Ref() noexcept = default;
  explicit Ref(U* p) noexcept : p_(p) {
    if (p_) p_->retain();
  }
  Ref(const Ref& o) noexcept : p_(o.p_) {
    if (p_) p_->retain();
  }
  Ref(Ref&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  template <class V>
  Ref(const Ref<V>& o) noexcept : p_(o.get()) {
    if (p_) p_->retain();
  }
  ~Ref() {
    if (p_) p_->release();
  }
  Ref& operator=(Ref o) noexcept {
    U* t = p_;
    p_ = o.p_;
    o.p_ = t;
    return *this;
  }
  U* get() const noexcept { return p_; }
  U* operator->() const noexcept { return p_; }
  U& operator*() const noexcept { return *p_; }
  explicit operator bool() const noexcept { return p_ != nullptr; }
  void reset() noexcept {
    if (p_) p_->release();
    p_ = nullptr;
  }
  friend bool operator==(const Ref& a, const Ref& b) noexcept { return a.p_ == b.p_; }

 private:
  U* p_ = nullptr;
};

template <class U, class... Args>
Ref<U> make_ref(Args&&... args) {
  return Ref<U>(new U(static_cast<Args&&>(args)...));
}

}  // namespace detail
}  // namespace grokalign
