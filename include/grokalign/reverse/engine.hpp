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
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "grokalign/ops/arithmetic.hpp"
#include "grokalign/reverse/graph.hpp"
#include "grokalign/reverse/scratch.hpp"

namespace grokalign {

struct GradOptions {
  bool create_graph = false;  // record the backward pass (for higher derivatives)
  bool allow_unused = false;  // an input no output depends on gets an undefined gradient
};

namespace detail {

// Where leaf cotangents go: the requested inputs (grad), or the .grad of the leaves
// (backward: every leaf that requires grad, or only the given ones).
enum class LeafSink { kTargets, kAccumulate };

// Told the index of each requested leaf once its gradient is final (backward_reporting):
// a function pointer and its context, so that a steady-state pass allocates nothing.
struct GradReady {
  void (*call)(void*, std::size_t) = nullptr;
  void* context = nullptr;
  explicit operator bool() const noexcept { return call != nullptr; }
  void operator()(std::size_t i) const { call(context, i); }
};

// The bookkeeping of one reverse pass, reused across passes (see ScratchLease).
template <Scalar T, class G>
struct PassScratch {
  GraphWalk<T> walk;
  std::vector<Node<T>*> claimed;  // storage of the pass's NodeClaims
  std::vector<G> results, gx;
  std::vector<char> reached;
  std::vector<int> pending;  // per leaf target: edges still to deliver (-1: reported)
  std::unique_ptr<bool[]> flags;
  std::size_t flags_size = 0;

  bool* flags_for(std::size_t k) {
    if (k > flags_size) {
      flags = std::make_unique<bool[]>(k);
      flags_size = k;
    }
    return flags.get();
  }
  void clear() {
    walk.clear();
    results.clear();
    gx.clear();
    reached.clear();
    pending.clear();
    claimed.clear();
  }
};

template <Scalar T, class G>
class ReversePass {
 public:
  ReversePass(std::span<const Var<T>> targets, LeafSink mode)
      : targets_(targets),
        mode_(mode),
        mark_(next_traversal_mark()),
        s_(*lease_),
        claims_(s_.claimed) {
    s_.results.resize(targets.size());
    s_.reached.assign(targets.size(), 0);
  }
  // Scratch is cleared on every exit, also when a rule throws: stale cotangents or target
  // tags left on nodes would corrupt the next pass over the same graph.
  ~ReversePass() { clear_scratch(); }
  ReversePass(const ReversePass&) = delete;
  ReversePass& operator=(const ReversePass&) = delete;

  // With `ready`, each leaf target's index is reported once its gradient is final: when the
  // last node feeding it has delivered (a leaf no delivered edge reaches, at the end).
  void run(std::span<const Var<T>> outputs, std::span<const G> seeds, GradReady ready = {}) {
    ready_ = ready;
    for (const auto& o : outputs) s_.walk.roots.push_back(o.node());
    walk_and_claim();
    tag_targets();
    if (ready_) s_.pending.assign(targets_.size(), 0);
    mark_needed();
    for (std::size_t i = 0; i < outputs.size(); ++i) sink(outputs[i], G(seeds[i]));
    propagate();
    if (ready_)
      for (std::size_t i = 0; i < targets_.size(); ++i)
        if (s_.pending[i] >= 0) report(i);
  }
  // The cotangent of target i (undefined when none arrived); valid until the pass ends.
  G& result(std::size_t i) { return s_.results[i]; }
  bool reached(std::size_t i) const { return s_.reached[i] != 0; }

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
    if (mode_ == LeafSink::kAccumulate && targets_.empty()) return v.requires_grad();
    return v.impl()->mark == mark_;
  }
  bool input_needed(const Var<T>& in) const {
    return in.node() ? in.node()->needed : leaf_wanted(in);
  }
  // A node is needed when it is requested or one of its inputs leads to a requested input;
  // the order lists producers before consumers, so one sweep settles it.
  void mark_needed() {
    for (Node<T>* n : s_.walk.order) {
      bool needed = n->is_target;
      for (int i = 0; i < n->num_inputs(); ++i) {
        const Var<T>& in = n->input(i);
        if (!in.node() && mode_ == LeafSink::kTargets && leaf_wanted(in))
          s_.reached[in.impl()->slot] = 1;
        if (ready_ && !in.node() && leaf_wanted(in) && in.impl()->slot >= 0)
          ++s_.pending[static_cast<std::size_t>(in.impl()->slot)];
        needed = needed || input_needed(in);
      }
      n->needed = needed;
      if (n->is_target) s_.reached[n->slot] = 1;
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
  void sink(const Var<T>& v, G g) {
    if (!g.defined()) return;
    if (Node<T>* n = v.node()) {
      if (n->mark == mark_ && n->needed) add_into(buffer(n), g);
      return;
    }
    if (!leaf_wanted(v)) return;
    if (mode_ == LeafSink::kAccumulate) {
      accumulate_into_leaf(v, std::move(g));
    } else {
      const int slot = v.impl()->slot;
      add_into(s_.results[slot], g);
      s_.reached[slot] = 1;
    }
  }
  void accumulate_into_leaf(const Var<T>& leaf, G g) {
    Tensor<T> gt;
    if constexpr (std::is_same_v<G, Tensor<T>>)
      gt = std::move(g);
    else
      gt = g.value();
    auto* impl = leaf.impl();
    if (impl->grad.defined() && impl->grad.shape() == gt.shape()) {
      impl->grad.array() += gt.array();  // in place: a steady-state step reuses the buffer
    } else if (gt.is_sole_owner()) {
      impl->grad = std::move(gt);  // nothing else sees this buffer: keep it
    } else {
      impl->grad = gt.clone();  // the cotangent aliases another buffer
    }
  }
  void propagate() {
    auto& gx = s_.gx;
    for (auto it = s_.walk.order.rbegin(); it != s_.walk.order.rend(); ++it) {
      Node<T>* n = *it;
      G gy = std::move(buffer(n));
      buffer(n) = G();
      if (n->is_target) s_.results[n->slot] = accumulate(s_.results[n->slot], gy);
      if (!n->needed || !gy.defined()) continue;
      const int k = n->num_inputs();
      bool* flags = s_.flags_for(static_cast<std::size_t>(k));
      bool any = false;
      for (int i = 0; i < k; ++i) {
        flags[i] = input_needed(n->input(i));
        any = any || flags[i];
      }
      if (!any) continue;
      gx.clear();
      gx.resize(static_cast<std::size_t>(k));
      n->vjp(gy, flags, gx.data());
      for (int i = 0; i < k; ++i)
        if (flags[i]) sink(n->input(i), std::move(gx[i]));
      if (ready_) delivered(n);
    }
    gx.clear();
  }
  // Node n has delivered its cotangents: a leaf target fed by no other pending edge is final.
  void delivered(Node<T>* n) {
    for (int i = 0; i < n->num_inputs(); ++i) {
      const Var<T>& in = n->input(i);
      if (in.node() || !leaf_wanted(in) || in.impl()->slot < 0) continue;
      const auto slot = static_cast<std::size_t>(in.impl()->slot);
      if (s_.pending[slot] > 0 && --s_.pending[slot] == 0) report(slot);
    }
  }
  void report(std::size_t slot) {
    s_.pending[slot] = -1;
    ready_(slot);
  }
  // Orders the nodes, claiming each for this thread before stamping it. A node another
  // thread is walking means two passes over one graph at once, which would corrupt both:
  // refused, leaving that thread's nodes untouched.
  void walk_and_claim() {
    topological_order(s_.walk.roots, mark_, s_.walk.order, s_.walk.stack,
                      [this](Node<T>* n) { claims_.claim_or_refuse(n, "grad"); });
    claimed_ = true;
  }
  void clear_scratch() {
    if (!claimed_) return;  // refused, or failed before the walk: nothing of ours to reset
    for (Node<T>* n : s_.walk.order) {
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
    claims_.release();
  }

  std::span<const Var<T>> targets_;
  GradReady ready_;
  bool claimed_ = false;
  LeafSink mode_;
  std::uint64_t mark_;
  ScratchLease<PassScratch<T, G>> lease_;
  PassScratch<T, G>& s_;
  NodeClaims<T> claims_;
};

template <Scalar T>
void check_outputs(std::span<const Var<T>> outputs, const char* op) {
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

template <Scalar T>
struct GradScratch {
  std::vector<Var<T>> seeds, unique;
  std::vector<Tensor<T>> tensor_seeds;
  std::vector<std::size_t> where;
  void clear() {
    seeds.clear();
    unique.clear();
    tensor_seeds.clear();
    where.clear();
  }
};

// grad() proper, writing one gradient per input into `result` (inputs.size() long). Spans
// in, spans out: with reused scratch, a steady-state call allocates nothing itself.
template <Scalar T>
void grad_into(std::span<const Var<T>> outputs, std::span<const Var<T>> inputs,
               std::span<const Var<T>> grad_outputs, GradOptions opts, std::span<Var<T>> result) {
  constexpr const char* op = "grad";
  if (outputs.empty()) throw_autodiff(op, "no outputs given");
  if (!grad_outputs.empty() && grad_outputs.size() != outputs.size())
    throw_autodiff(op, std::to_string(grad_outputs.size()) + " grad_outputs given for " +
                           std::to_string(outputs.size()) + " outputs");
  check_outputs(outputs, op);
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].defined()) throw_autodiff(op, "input " + std::to_string(i) + " is undefined");

  ScratchLease<GradScratch<T>> lease;
  GradScratch<T>& s = *lease;
  for (std::size_t i = 0; i < outputs.size(); ++i)
    s.seeds.push_back(
        seed_for(outputs[i], grad_outputs.empty() ? nullptr : &grad_outputs[i], i, op));

  // The pass needs each requested Var once; repeated inputs share its result.
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    std::size_t j = 0;
    while (j < s.unique.size() && !s.unique[j].same_as(inputs[i])) ++j;
    if (j == s.unique.size()) s.unique.push_back(inputs[i]);
    s.where.push_back(j);
  }

  // Copies each pass result out, then settles inputs that received no cotangent.
  auto finish = [&](auto& pass, auto&& to_var) {
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const std::size_t j = s.where[i];
      result[i] = to_var(pass.result(j));
      bool reached = pass.reached(j);
      for (const auto& o : outputs)
        if (o.same_as(inputs[i])) reached = true;
      if (result[i].defined()) continue;
      if (!reached && !opts.allow_unused)
        throw_autodiff(op, "input " + std::to_string(i) + " (shape " +
                               inputs[i].shape().to_string() +
                               ") is not part of the graph of the outputs; pass "
                               "allow_unused = true to accept an undefined gradient");
      if (reached) result[i] = Var<T>(Tensor<T>::zeros(inputs[i].shape()));
    }
  };
  const std::span<const Var<T>> unique(s.unique);
  if (opts.create_graph) {
    GradModeGuard record(true);
    ReversePass<T, Var<T>> pass(unique, LeafSink::kTargets);
    pass.run(outputs, std::span<const Var<T>>(s.seeds));
    finish(pass, [](const Var<T>& g) { return g; });
  } else {
    for (const auto& seed : s.seeds) s.tensor_seeds.push_back(seed.value());
    ReversePass<T, Tensor<T>> pass(unique, LeafSink::kTargets);
    pass.run(outputs, std::span<const Tensor<T>>(s.tensor_seeds));
    finish(pass, [](const Tensor<T>& g) { return g.defined() ? Var<T>(g) : Var<T>(); });
  }
}

}  // namespace detail

// Gradients of sum_i <grad_outputs[i], outputs[i]> with respect to each input.
// Inputs may be leaves or intermediate Vars. An input the outputs do not depend on is an
// error unless allow_unused (then its gradient is undefined); an input that is reached but
// receives no cotangent (a structurally zero derivative) gets a zero tensor.
template <Scalar T>
std::vector<Var<T>> grad(const std::vector<Var<T>>& outputs, const std::vector<Var<T>>& inputs,
                         const std::vector<Var<T>>& grad_outputs = {}, GradOptions opts = {}) {
  std::vector<Var<T>> result(inputs.size());
  detail::grad_into<T>(outputs, inputs, grad_outputs, opts, result);
  return result;
}

// The same with braced lists, so the scalar type is deduced: grad({loss}, {w1, w2}).
template <Scalar T>
std::vector<Var<T>> grad(std::initializer_list<Var<T>> outputs,
                         std::initializer_list<std::type_identity_t<Var<T>>> inputs,
                         std::initializer_list<std::type_identity_t<Var<T>>> grad_outputs = {},
                         GradOptions opts = {}) {
  std::vector<Var<T>> result(inputs.size());
  detail::grad_into<T>(std::span<const Var<T>>(outputs.begin(), outputs.size()),
                       std::span<const Var<T>>(inputs.begin(), inputs.size()),
                       std::span<const Var<T>>(grad_outputs.begin(), grad_outputs.size()), opts,
                       result);
  return result;
}

// One output, one input: grad(y, x, v) is v^T dy/dx. Allocates nothing beyond the
// gradient itself, so it is the form for steady-state training loops.
template <Scalar T>
Var<T> grad(const Var<T>& output, const Var<T>& input,
            const std::type_identity_t<Var<T>>& grad_output = Var<T>(), GradOptions opts = {}) {
  Var<T> result;
  detail::grad_into<T>(std::span<const Var<T>>(&output, 1), std::span<const Var<T>>(&input, 1),
                       std::span<const Var<T>>(&grad_output, 1), opts,
                       std::span<Var<T>>(&result, 1));
  return result;
}

template <Scalar T>
void Var<T>::backward(const Tensor<T>& grad_output) const {
  backward(std::span<const Var<T>>(), grad_output);
}

namespace detail {

// backward() proper: the gradient of `out` accumulated into the given leaves' .grad (every
// leaf that requires grad when none is given), telling `ready` of each one as it is final.
template <Scalar T>
void backward_into(const Var<T>& out, std::span<const Var<T>> inputs, const Tensor<T>& grad_output,
                   GradReady ready, const char* op) {
  const std::span<const Var<T>> outputs(&out, 1);
  check_outputs(outputs, op);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) throw_autodiff(op, "input " + std::to_string(i) + " is undefined");
    if (!inputs[i].is_leaf())
      throw_autodiff(op, "input " + std::to_string(i) +
                             " is not a leaf; use grad() for the gradient of an "
                             "intermediate value");
    if (!inputs[i].requires_grad())
      throw_autodiff(op, "input " + std::to_string(i) + " does not require grad");
  }
  const Var<T> given(grad_output);
  const Tensor<T> seed = seed_for(out, grad_output.defined() ? &given : nullptr, 0, op).value();
  ReversePass<T, Tensor<T>> pass(inputs, LeafSink::kAccumulate);
  pass.run(outputs, std::span<const Tensor<T>>(&seed, 1), ready);
}

}  // namespace detail

template <Scalar T>
void Var<T>::backward(std::span<const Var<T>> inputs, const Tensor<T>& grad_output) const {
  detail::backward_into(*this, inputs, grad_output, {}, "backward");
}

// backward(params) that tells `on_ready(i)` as soon as params[i]'s gradient is final, while
// the pass goes on: the later layers' gradients are final long before the first layer's, so
// a data-parallel program can start reducing them early (distributed::GradientAllreduce's
// overlapped mode). Every index is told exactly once, in the order the gradients become
// final (one that receives no gradient, at the end, its grad() then undefined); the
// callback must not touch the graph. Otherwise exactly loss.backward(params).
template <Scalar T, class OnReady>
void backward_reporting(const Var<T>& loss, std::span<const Var<T>> params, OnReady& on_ready,
                        const Tensor<T>& grad_output = Tensor<T>()) {
  if (params.empty())
    detail::throw_autodiff("backward_reporting",
                           "no parameters given: the gradients to report must be named");
  const detail::GradReady ready{[](void* f, std::size_t i) { (*static_cast<OnReady*>(f))(i); },
                                &on_ready};
  detail::backward_into(loss, params, grad_output, ready, "backward_reporting");
}

}  // namespace grokalign
