#pragma once
// Finds how an input enters a recorded graph: when x is used exactly once, as the left
// factor of a matrix product h = x op(W) (a first Linear layer), the penalty can work with
// the cotangent at h and the Gram matrix of W instead of forming J^T v at x.
#include <optional>

#include "grokalign/ops/matmul.hpp"
#include "grokalign/reverse/graph.hpp"
#include "grokalign/reverse/scratch.hpp"

namespace grokalign::align::detail {

template <Scalar T>
struct LeadingProduct {
  Var<T> h;                // the product x op(W), [B, n]
  Var<T> weight;           // W
  bool weight_transposed;  // op(W) = W^T (a Linear layer's x W^T)
};

// The product through which 2-D x enters the graph of `out`, if x has exactly one use there
// and that use is the left, untransposed factor of a 2-D matmul.
template <Scalar T>
std::optional<LeadingProduct<T>> find_leading_product(const Var<T>& out, const Var<T>& x) {
  using grokalign::detail::Node;
  if (x.rank() != 2 || !out.node()) return std::nullopt;
  grokalign::detail::ScratchLease<grokalign::detail::GraphWalk<T>> walk;
  walk->roots.push_back(out.node());
  walk->run(grokalign::detail::next_traversal_mark());
  Node<T>* consumer = nullptr;
  int uses = 0;
  for (Node<T>* n : walk->order)
    for (int i = 0; i < n->num_inputs(); ++i)
      if (n->input(i).same_as(x)) {
        ++uses;
        consumer = n;
      }
  if (uses != 1) return std::nullopt;
  const auto* product =
      dynamic_cast<const grokalign::detail::OpNode<T, rules::Matmul<T>, 2>*>(consumer);
  if (!product || !product->inputs[0].same_as(x) || product->params.ta ||
      product->inputs[1].rank() != 2)
    return std::nullopt;

  // The Var that carries the product's output: `out` itself or an input of a later node.
  const Var<T>& weight = product->inputs[1];
  const bool transposed = product->params.tb;
  if (out.node() == consumer) return LeadingProduct<T>{out, weight, transposed};
  for (Node<T>* n : walk->order)
    for (int i = 0; i < n->num_inputs(); ++i)
      if (n->input(i).node() == consumer) return LeadingProduct<T>{n->input(i), weight, transposed};
  return std::nullopt;
}

}  // namespace grokalign::align::detail
