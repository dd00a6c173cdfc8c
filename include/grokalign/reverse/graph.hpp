#pragma once
// Graph traversal shared by the reverse engine and forward mode over a recorded graph:
// nodes reachable from a set of outputs in topological order, found without recursion
// so that graphs of any depth are safe.
#include <atomic>
#include <cstdint>
#include <utility>
#include <vector>

#include "grokalign/reverse/var.hpp"

namespace grokalign::detail {

inline std::uint64_t next_traversal_mark() {
  static std::atomic<std::uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

// Appends to `order` every node reachable from `roots` in post-order (each node after all
// nodes that produce its inputs). Nodes are stamped with `mark`.
// `stack` is scratch, passed in so that a caller can reuse its capacity.
template <Scalar T>
void topological_order(const std::vector<Node<T>*>& roots, std::uint64_t mark,
                       std::vector<Node<T>*>& order, std::vector<std::pair<Node<T>*, int>>& stack) {
  stack.clear();
  for (Node<T>* root : roots) {
    if (!root || root->mark == mark) continue;
    root->mark = mark;
    stack.emplace_back(root, 0);
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      if (next < node->num_inputs()) {
        Node<T>* child = node->input(next++).node();
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
                       std::vector<Node<T>*>& order) {
  std::vector<std::pair<Node<T>*, int>> stack;
  topological_order(roots, mark, order, stack);
}

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
