#pragma once
// Graph traversal shared by the reverse engine and forward mode over a recorded graph:
// nodes reachable from a set of outputs in topological order, found without recursion
// so that graphs of any depth are safe.
#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "grokalign/core/error.hpp"
#include "grokalign/reverse/var.hpp"

namespace grokalign::detail {

inline std::uint64_t next_traversal_mark() {
  static std::atomic<std::uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

// Appends to `order` every node reachable from `roots` in post-order (each node after all
// nodes that produce its inputs). Nodes are stamped with `mark`; `before_stamp(node)` runs
// before a node's mark is read or written (once per edge: it must be idempotent), so a pass can
// claim a node before it writes anything into it (it throws to stop the walk). `stack` is scratch,
// passed in so that a caller can reuse its capacity.
template <Scalar T, class BeforeStamp>
void topological_order(const std::vector<Node<T>*>& roots, std::uint64_t mark,
                       std::vector<Node<T>*>& order, std::vector<std::pair<Node<T>*, int>>& stack,
                       BeforeStamp&& before_stamp) {
  stack.clear();
  for (Node<T>* root : roots) {
    if (!root) continue;
    before_stamp(root);  // before reading the mark too: another thread may be writing it
    if (root->mark == mark) continue;
    root->mark = mark;
    stack.emplace_back(root, 0);
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      if (next < node->num_inputs()) {
        Node<T>* child = node->input(next++).node();
        if (child) before_stamp(child);
        if (child && child->mark != mark) {
          child->mark = mark;
          stack.emplace_back(child, 0);
        }
      } else {
        order.push_back(node);
        stack.pop_back();
      }
    }
  }
}

template <Scalar T>
void topological_order(const std::vector<Node<T>*>& roots, std::uint64_t mark,
                       std::vector<Node<T>*>& order, std::vector<std::pair<Node<T>*, int>>& stack) {
  topological_order(roots, mark, order, stack, [](Node<T>*) {});
}

template <Scalar T>
void topological_order(const std::vector<Node<T>*>& roots, std::uint64_t mark,
                       std::vector<Node<T>*>& order) {
  std::vector<std::pair<Node<T>*, int>> stack;
  topological_order(roots, mark, order, stack);
}

// Identifies the calling thread to Node::walker: the address of a thread-local object.
inline std::uintptr_t this_thread_token() noexcept {
  thread_local char token;
  return reinterpret_cast<std::uintptr_t>(&token);
}

// The nodes one pass has claimed (Node::walker set to this thread), released on request or
// at the latest when the pass ends. Claiming happens before the pass writes anything into a
// node, so a pass that meets another thread's node leaves that node untouched. The list
// lives in the caller's reused scratch, so a steady-state pass allocates nothing here.
template <Scalar T>
class NodeClaims {
 public:
  explicit NodeClaims(std::vector<Node<T>*>& storage) : claimed_(storage) { claimed_.clear(); }
  NodeClaims(const NodeClaims&) = delete;
  NodeClaims& operator=(const NodeClaims&) = delete;
  ~NodeClaims() { release(); }

  // Claims `n`; returns false when another thread's pass holds it. A node this thread
  // already holds belongs to an enclosing pass (a transform run inside a rule): allowed.
  bool claim(Node<T>* n) {
    const std::uintptr_t me = this_thread_token();
    std::uintptr_t owner = 0;
    if (n->walker.compare_exchange_strong(owner, me, std::memory_order_acquire,
                                          std::memory_order_relaxed)) {
      claimed_.push_back(n);
      return true;
    }
    return owner == me;
  }
  void release() {
    for (Node<T>* n : claimed_) n->walker.store(0, std::memory_order_release);
    claimed_.clear();
  }
  // Claims `n`, or releases every claim of this pass and refuses the pass (`op` names it)
  // when another thread's pass holds `n`: the refused pass has written nothing into it.
  void claim_or_refuse(Node<T>* n, const char* op) {
    if (claim(n)) return;
    release();
    throw_autodiff(op, "another thread is differentiating the same graph (node '" +
                           std::string(n->name()) +
                           "'); one graph takes one pass at a time: give each thread its own "
                           "forward pass (docs/engine.md, \"Threads\")");
  }

 private:
  std::vector<Node<T>*>& claimed_;
};

// The vectors of one traversal, kept together so that a pass can reuse their capacity
// (see ScratchLease): set `roots`, call run(), read `order`.
template <Scalar T>
struct GraphWalk {
  std::vector<Node<T>*> roots, order;
  std::vector<std::pair<Node<T>*, int>> stack;

  void run(std::uint64_t mark) { topological_order(roots, mark, order, stack); }
  void clear() {
    roots.clear();
    order.clear();
    stack.clear();
  }
};

}  // namespace grokalign::detail
