#pragma once
// The reverse-mode engine: grad() in the spirit of torch.autograd.grad, and backward().
//
// One pass visits the nodes between the outputs and the requested inputs in reverse
// topological order, each exactly once, after every consumer of its output has added its
// cotangent. Nodes that do not lead to a requested input are skipped, and an input
// cotangent that no path needs is never computed (a weight gradient is not formed when
// only the input gradient was asked for). With create_graph the VJP rules run on Vars,
// so the pass is itself recorded and can be differentiated again.
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "grokalign/ops/arithmetic.hpp"
#include "grokalign/reverse/graph.hpp"

namespace grokalign {

struct GradOptions {
  bool create_graph = false;  // record the backward pass (for higher derivatives)
  bool allow_unused = false;  // an input no output depends on gets an undefined gradient
};

namespace detail {

// Where leaf cotangents go: the requested inputs (grad) or every leaf's .grad (backward).
enum class LeafSink { kTargets, kAccumulate };

template <Scalar T, class G>
class ReversePass {
 public:
  ReversePass(const std::vector<Var<T>>& targets, LeafSink mode)
      : targets_(targets),
        mode_(mode),
        mark_(next_traversal_mark()),
        results_(targets.size()),
        reached_(targets.size(), false) {}
  // Scratch is cleared on every exit, also when a rule throws: stale cotangents or target
  // tags left on nodes would corrupt the next pass over the same graph.
  ~ReversePass() { clear_scratch(); }
  ReversePass(const ReversePass&) = delete;
  ReversePass& operator=(const ReversePass&) = delete;

  std::vector<G> run(const std::vector<Var<T>>& outputs, const std::vector<G>& seeds) {
    tag_targets();
    std::vector<Node<T>*> roots;
    for (const auto& o : outputs) roots.push_back(o.node());
    topological_order(roots, mark_, order_);
    mark_needed();
    for (std::size_t i = 0; i < outputs.size(); ++i) sink(outputs[i], seeds[i]);
    propagate();
    return std::move(results_);
  }
  bool reached(std::size_t i) const { return reached_[i]; }

 private:
  void tag_targets() {
    for (std::size_t i = 0; i < targets_.size(); ++i) {
      if (Node<T>* n = targets_[i].node()) {
        n->is_target = true;
        n->slot = static_cast<int>(i);
      } else {
        targets_[i].impl()->mark = mark_;
        targets_[i].impl()->slot = static_cast<int>(i);
      }
    }
  }
  bool leaf_wanted(const Var<T>& v) const {
    if (mode_ == LeafSink::kAccumulate) return v.requires_grad();
    return v.impl()->mark == mark_;
  }
  bool input_needed(const Var<T>& in) const {
    return in.node() ? in.node()->needed : leaf_wanted(in);
  }
  // A node is needed when it is requested or one of its inputs leads to a requested input;
  // `order_` lists producers before consumers, so one sweep settles it.
  void mark_needed() {
    for (Node<T>* n : order_) {
      bool needed = n->is_target;
      for (int i = 0; i < n->num_inputs(); ++i) {
        const Var<T>& in = n->input(i);
        if (!in.node() && mode_ == LeafSink::kTargets && leaf_wanted(in))
          reached_[in.impl()->slot] = true;
        needed = needed || input_needed(in);
      }
      n->needed = needed;
      if (n->is_target) reached_[n->slot] = true;
    }
  }
  // acc += g, in place when acc's storage is not shared (the common case: a buffer the
  // pass allocated itself), saving an allocation and a pass over the sum.
  static void add_into(G& acc, const G& g) {
    if constexpr (std::is_same_v<G, Tensor<T>>) {
      if (acc.defined() && g.defined() && acc.is_sole_owner() && acc.shape() == g.shape() &&
          !acc.shares_storage_with(g)) {
        acc.array() += g.array();
        return;
      }
    }
    acc = accumulate(acc, g);
  }
  G& buffer(Node<T>* n) {
    if constexpr (std::is_same_v<G, Tensor<T>>)
      return n->buf_t;
    else
      return n->buf_v;
  }
  void sink(const Var<T>& v, const G& g) {
    if (!g.defined()) return;
    if (Node<T>* n = v.node()) {
      if (n->mark == mark_ && n->needed) add_into(buffer(n), g);
      return;
    }
    if (!leaf_wanted(v)) return;
    if (mode_ == LeafSink::kAccumulate) {
      accumulate_into_leaf(v, g);
    } else {
      const int s = v.impl()->slot;
      add_into(results_[s], g);
      reached_[s] = true;
    }
  }
  void accumulate_into_leaf(const Var<T>& leaf, const G& g) {
    Tensor<T> gt;
    if constexpr (std::is_same_v<G, Tensor<T>>)
      gt = g;
    else
      gt = g.value();
    auto* impl = leaf.impl();
    if (impl->grad.defined() && impl->grad.shape() == gt.shape()) {
      impl->grad.array() += gt.array();  // in place: a steady-state step reuses the buffer
    } else {
      impl->grad = gt.clone();  // the cotangent may alias another buffer
    }
  }
  void propagate() {
    std::vector<G> gx;
    std::vector<char> need;
    for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
      Node<T>* n = *it;
      G gy = std::move(buffer(n));
      buffer(n) = G();
      if (n->is_target) results_[n->slot] = accumulate(results_[n->slot], gy);
      if (!n->needed || !gy.defined()) continue;
      const int k = n->num_inputs();
      gx.assign(k, G());
      need.assign(k, 0);
      bool any = false;
      for (int i = 0; i < k; ++i) {
        need[i] = input_needed(n->input(i)) ? 1 : 0;
        any = any || need[i];
      }
      if (!any) continue;
      bool small[64];
      std::unique_ptr<bool[]> large;
      bool* flags = small;
      if (k > 64) {
        large = std::make_unique<bool[]>(k);
        flags = large.get();
      }
      for (int i = 0; i < k; ++i) flags[i] = need[i] != 0;
      n->vjp(gy, flags, gx.data());
      for (int i = 0; i < k; ++i)
        if (need[i]) sink(n->input(i), gx[i]);
    }
  }
  void clear_scratch() {
    for (Node<T>* n : order_) {
      n->needed = false;
      buffer(n) = G();
    }
    for (const auto& t : targets_) {
      if (Node<T>* n = t.node()) {
        n->is_target = false;
        n->slot = -1;
      } else {
        t.impl()->slot = -1;
      }
    }
  }

  const std::vector<Var<T>>& targets_;
  LeafSink mode_;
  std::uint64_t mark_;
  std::vector<Node<T>*> order_;
  std::vector<G> results_;
  std::vector<bool> reached_;
};

template <Scalar T>
void check_outputs(const std::vector<Var<T>>& outputs, const char* op) {
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    if (!outputs[i].defined()) throw_autodiff(op, "output " + std::to_string(i) + " is undefined");
    if (!outputs[i].requires_grad())
      throw_autodiff(op, "output " + std::to_string(i) +
                             " does not require grad: it does not depend on any input that "
                             "requires grad (or was computed under NoGradGuard)");
  }
}

// The seed cotangent of each output: given, or 1 for a one-element output.
template <Scalar T>
Var<T> seed_for(const Var<T>& out, const Var<T>* given, std::size_t i, const char* op) {
  if (given && given->defined()) {
    if (!(given->shape() == out.shape()))
      throw_shape(op, "grad_output " + std::to_string(i) + " has shape " +
                          given->shape().to_string() + " but output " + std::to_string(i) +
                          " has shape " + out.shape().to_string());
    return *given;
  }
  if (out.numel() != 1)
    throw_autodiff(op, "output " + std::to_string(i) + " has shape " + out.shape().to_string() +
                           "; a grad_output of that shape is required for a non-scalar output");
  return Var<T>(Tensor<T>::ones(out.shape()));
}

}  // namespace detail

// Gradients of sum_i <grad_outputs[i], outputs[i]> with respect to each input.
// Inputs may be leaves or intermediate Vars. An input the outputs do not depend on is an
// error unless allow_unused (then its gradient is undefined); an input that is reached but
// receives no cotangent (a structurally zero derivative) gets a zero tensor.
template <Scalar T>
std::vector<Var<T>> grad(const std::vector<Var<T>>& outputs, const std::vector<Var<T>>& inputs,
                         const std::vector<Var<T>>& grad_outputs = {}, GradOptions opts = {}) {
  constexpr const char* op = "grad";
  if (outputs.empty()) detail::throw_autodiff(op, "no outputs given");
  if (!grad_outputs.empty() && grad_outputs.size() != outputs.size())
    detail::throw_autodiff(op, std::to_string(grad_outputs.size()) + " grad_outputs given for " +
                                   std::to_string(outputs.size()) + " outputs");
  detail::check_outputs(outputs, op);
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].defined())
      detail::throw_autodiff(op, "input " + std::to_string(i) + " is undefined");

  std::vector<Var<T>> seeds(outputs.size());
  for (std::size_t i = 0; i < outputs.size(); ++i)
    seeds[i] =
        detail::seed_for(outputs[i], grad_outputs.empty() ? nullptr : &grad_outputs[i], i, op);

  // The pass needs each requested Var once; repeated inputs share its result.
  std::vector<Var<T>> unique;
  std::vector<std::size_t> where(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    std::size_t j = 0;
    while (j < unique.size() && !unique[j].same_as(inputs[i])) ++j;
    if (j == unique.size()) unique.push_back(inputs[i]);
    where[i] = j;
  }

  std::vector<Var<T>> found(unique.size());
  std::vector<bool> found_reached(unique.size());
  if (opts.create_graph) {
    GradModeGuard record(true);
    detail::ReversePass<T, Var<T>> pass(unique, detail::LeafSink::kTargets);
    found = pass.run(outputs, seeds);
    for (std::size_t j = 0; j < unique.size(); ++j) found_reached[j] = pass.reached(j);
  } else {
    std::vector<Tensor<T>> tseeds(seeds.size());
    for (std::size_t i = 0; i < seeds.size(); ++i) tseeds[i] = seeds[i].value();
    detail::ReversePass<T, Tensor<T>> pass(unique, detail::LeafSink::kTargets);
    auto r = pass.run(outputs, tseeds);
    for (std::size_t j = 0; j < unique.size(); ++j) {
      found[j] = Var<T>(r[j]);
      found_reached[j] = pass.reached(j);
    }
  }
  std::vector<Var<T>> result(inputs.size());
  std::vector<bool> reached(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    result[i] = found[where[i]];
    reached[i] = found_reached[where[i]];
  }
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    for (const auto& o : outputs)
      if (o.same_as(inputs[i])) reached[i] = true;
    if (result[i].defined()) continue;
    if (!reached[i] && !opts.allow_unused)
      detail::throw_autodiff(op, "input " + std::to_string(i) + " (shape " +
                                     inputs[i].shape().to_string() +
                                     ") is not part of the graph of the outputs; pass "
                                     "allow_unused = true to accept an undefined gradient");
    if (reached[i]) result[i] = Var<T>(Tensor<T>::zeros(inputs[i].shape()));
  }
  return result;
}

// The same with braced lists, so the scalar type is deduced: grad({loss}, {w1, w2}).
template <Scalar T>
std::vector<Var<T>> grad(std::initializer_list<Var<T>> outputs,
                         std::initializer_list<std::type_identity_t<Var<T>>> inputs,
                         std::initializer_list<std::type_identity_t<Var<T>>> grad_outputs = {},
                         GradOptions opts = {}) {
  return grad<T>(std::vector<Var<T>>(outputs), std::vector<Var<T>>(inputs),
                 std::vector<Var<T>>(grad_outputs), opts);
}

template <Scalar T>
void Var<T>::backward(const Tensor<T>& grad_output) const {
  constexpr const char* op = "backward";
  const std::vector<Var<T>> outputs{*this};
  detail::check_outputs(outputs, op);
  const Var<T> given(grad_output);
  const Var<T> seed = detail::seed_for(*this, grad_output.defined() ? &given : nullptr, 0, op);
  const std::vector<Var<T>> none;
  detail::ReversePass<T, Tensor<T>> pass(none, detail::LeafSink::kAccumulate);
  pass.run(outputs, {seed.value()});
}

}  // namespace grokalign
