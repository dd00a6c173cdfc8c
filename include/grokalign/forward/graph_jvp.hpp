#pragma once
// Forward mode over a recorded graph: pushes tangents of some Vars through the nodes that
// lie between them and the outputs, using each primitive's JVP rule. Applied to the graph
// of a gradient built with create_graph, this is forward-over-reverse: a Hessian-vector
// product at the cost of about one extra pass.
#include <string>
#include <vector>

#include "grokalign/ops/apply.hpp"
#include "grokalign/reverse/graph.hpp"

namespace grokalign {

// Tangents of `outputs` when `inputs` move along `tangents` (one per input, its shape).
// An output that does not depend on the inputs gets a zero tangent.
template <Scalar T>
std::vector<Tensor<T>> jvp_graph(const std::vector<Var<T>>& outputs,
                                 const std::vector<Var<T>>& inputs,
                                 const std::vector<Tensor<T>>& tangents) {
  constexpr const char* op = "jvp_graph";
  if (inputs.size() != tangents.size())
    detail::throw_autodiff(op, std::to_string(tangents.size()) + " tangents for " +
                                   std::to_string(inputs.size()) + " inputs");
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined() || !tangents[i].defined())
      detail::throw_autodiff(op, "input or tangent " + std::to_string(i) + " is undefined");
    if (!(inputs[i].shape() == tangents[i].shape()))
      detail::throw_shape(op, "tangent " + std::to_string(i) + " has shape " +
                                  tangents[i].shape().to_string() + " but input has shape " +
                                  inputs[i].shape().to_string());
  }
  for (std::size_t i = 0; i < outputs.size(); ++i)
    if (!outputs[i].defined())
      detail::throw_autodiff(op, "output " + std::to_string(i) + " is undefined");

  // An input listed twice moves along the sum of its tangents.
  std::vector<Var<T>> unique;
  std::vector<Tensor<T>> unique_tangents;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    std::size_t j = 0;
    while (j < unique.size() && !unique[j].same_as(inputs[i])) ++j;
    if (j == unique.size()) {
      unique.push_back(inputs[i]);
      unique_tangents.push_back(tangents[i]);
    } else {
      unique_tangents[j] = unique_tangents[j] + tangents[i];
    }
  }

  const std::uint64_t mark = detail::next_traversal_mark();
  // Every node this pass writes into is claimed for this thread first, as a reverse pass
  // does: another thread's pass over the same graph is refused instead of corrupted.
  std::vector<detail::Node<T>*> order, claimed;
  detail::NodeClaims<T> claims(claimed);
  auto claim = [&](detail::Node<T>* n) { claims.claim_or_refuse(n, op); };
  std::vector<detail::Node<T>*> roots;
  for (const auto& o : outputs) roots.push_back(o.node());
  std::vector<std::pair<detail::Node<T>*, int>> stack;
  detail::topological_order(roots, mark, order, stack, claim);
  for (const auto& in : unique)
    if (detail::Node<T>* n = in.node()) claim(n);

  // Tags and tangents left on nodes by a rule that throws would corrupt later passes.
  struct Cleanup {
    const std::vector<Var<T>>& inputs;
    const std::vector<detail::Node<T>*>& order;
    ~Cleanup() {
      for (detail::Node<T>* n : order) n->buf_t = Tensor<T>();
      for (const auto& in : inputs) {
        if (detail::Node<T>* n = in.node()) {
          n->is_target = false;
          n->slot = -1;
        } else {
          in.impl()->slot = -1;
        }
      }
    }
  } cleanup{unique, order};

  for (std::size_t i = 0; i < unique.size(); ++i) {
    if (detail::Node<T>* n = unique[i].node()) {
      n->is_target = true;
      n->slot = static_cast<int>(i);
    } else {
      unique[i].impl()->mark = mark;
      unique[i].impl()->slot = static_cast<int>(i);
    }
  }
  auto tangent_of = [&](const Var<T>& v) -> Tensor<T> {
    if (detail::Node<T>* n = v.node()) return n->mark == mark ? n->buf_t : Tensor<T>();
    return v.impl()->mark == mark ? unique_tangents[v.impl()->slot] : Tensor<T>();
  };

  std::vector<Tensor<T>> in_tangents;
  for (detail::Node<T>* n : order) {  // producers first
    if (n->is_target) {
      n->buf_t = unique_tangents[n->slot];
      continue;
    }
    const int k = n->num_inputs();
    in_tangents.assign(k, Tensor<T>());
    bool any = false;
    for (int i = 0; i < k; ++i) {
      in_tangents[i] = tangent_of(n->input(i));
      any = any || in_tangents[i].defined();
    }
    n->buf_t = any ? n->jvp(in_tangents.data()) : Tensor<T>();
  }

  std::vector<Tensor<T>> result(outputs.size());
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    result[i] = tangent_of(outputs[i]);
    if (!result[i].defined()) result[i] = Tensor<T>::zeros(outputs[i].shape());
  }
  return result;
}

}  // namespace grokalign
