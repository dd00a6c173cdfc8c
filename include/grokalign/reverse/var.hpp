#pragma once
// Var<T>: a tensor and its place in a dynamically recorded graph (reverse mode).
// Each operation on Vars that requires a gradient creates one Node holding the operation's
// inputs (as Vars) and, where its rules need it, its output value. Handles are reference
// counted; the graph lives as long as some Var reaches it.
#include <array>
#include <atomic>
#include <cstdint>
#include <span>
#include <vector>

#include "grokalign/core/tensor.hpp"
#include "grokalign/reverse/grad_mode.hpp"

namespace grokalign {

template <Scalar T>
class Var;

namespace detail {
template <Scalar T>
struct Node;

template <Scalar T>
struct VarImpl final : RefCounted {
  Tensor<T> value;
  Tensor<T> grad;  // accumulated by backward() on leaves that require grad
  Ref<Node<T>> grad_fn;
  bool requires_grad = false;
  // Engine scratch: which requested input this leaf is in the current grad() call.
  std::uint64_t mark = 0;
  int slot = -1;
};
}  // namespace detail

template <Scalar T>
class Var {
 public:
  using value_type = T;

  Var() = default;                                           // undefined: a symbolic zero
  Var(const Tensor<T>& value, bool requires_grad = false) {  // NOLINT: implicit on purpose
    if (!value.defined()) return;
    impl_ = detail::make_ref<detail::VarImpl<T>>();
    impl_->value = value;
    impl_->requires_grad = requires_grad;
  }
  static Var from_node(const Tensor<T>& value, detail::Ref<detail::Node<T>> node) {
    Var v(value, true);
    v.impl_->grad_fn = std::move(node);
    return v;
  }

  bool defined() const noexcept { return static_cast<bool>(impl_); }
  const Tensor<T>& value() const {
    check_defined("value");
    return impl_->value;
  }
  const Shape& shape() const { return value().shape(); }
  int rank() const { return value().rank(); }
  index_t numel() const { return value().numel(); }
  index_t dim(int axis) const { return value().dim(axis); }
  T item() const { return value().item(); }

  bool requires_grad() const noexcept { return impl_ && impl_->requires_grad; }
  bool is_leaf() const noexcept { return !impl_ || !impl_->grad_fn; }
  // Marks a leaf as a differentiable input; refused on results of operations.
  Var& set_requires_grad(bool on = true) {
    check_defined("set_requires_grad");
    if (impl_->grad_fn)
      detail::throw_autodiff("set_requires_grad",
                             "only leaf Vars can change requires_grad; use detach() first");
    impl_->requires_grad = on;
    return *this;
  }
  // Gradient accumulated by backward(); undefined until a backward pass reached this leaf.
  const Tensor<T>& grad() const {
    check_defined("grad");
    return impl_->grad;
  }
  // Sets the accumulated gradient to zero in place (keeps its buffer for the next step).
  void zero_grad() {
    check_defined("zero_grad");
    if (impl_->grad.defined()) impl_->grad.fill(T(0));
  }
  void set_grad(const Tensor<T>& g) {
    check_defined("set_grad");
    if (g.defined() && !(g.shape() == impl_->value.shape()))
      detail::throw_shape("set_grad", "gradient of shape " + g.shape().to_string() +
                                          " for a Var of shape " +
                                          impl_->value.shape().to_string());
    impl_->grad = g;
  }
  // Replaces the value of a leaf in place (for optimisers); the shape must not change.
  void assign(const Tensor<T>& v) {
    check_defined("assign");
    if (!(v.shape() == impl_->value.shape()))
      detail::throw_shape("assign", "new value of shape " + v.shape().to_string() +
                                        " for a Var of shape " + impl_->value.shape().to_string());
    impl_->value.copy_from(v);
  }
  // Same value, cut from the graph.
  Var detach() const {
    check_defined("detach");
    return Var(impl_->value, false);
  }

  // Accumulates d(this)/d(leaf) into every leaf's grad(). A non-scalar output needs an
  // upstream vector of its own shape.
  void backward(const Tensor<T>& grad_output = Tensor<T>()) const;
  // Accumulates only into the .grad of `inputs` (leaves that require grad), as PyTorch's
  // backward(inputs=...): the pass skips every other leaf and every branch leading only to
  // them, such as the input gradient of a step whose input requires grad.
  void backward(std::span<const Var<T>> inputs, const Tensor<T>& grad_output = Tensor<T>()) const;

  detail::VarImpl<T>* impl() const noexcept { return impl_.get(); }
  detail::Node<T>* node() const noexcept { return impl_ ? impl_->grad_fn.get() : nullptr; }
  bool same_as(const Var& o) const noexcept { return impl_ == o.impl_; }

 private:
  void check_defined(const char* op) const {
    if (!impl_) detail::throw_autodiff(op, "the Var is undefined (default-constructed)");
  }
  detail::Ref<detail::VarImpl<T>> impl_;
};

namespace detail {

// A recorded operation. Its rules are the primitive's: vjp on plain tensors (ordinary
// backward), vjp on Vars (create_graph: the backward pass is itself recorded), and jvp
// on tensors (forward mode over a recorded graph, used for forward-over-reverse).
template <Scalar T>
struct Node : RefCounted {
  virtual const char* name() const noexcept = 0;
  virtual int num_inputs() const noexcept = 0;
  virtual const Var<T>& input(int i) const noexcept = 0;
  // gx[i] is written only where need[i]; an undefined result is a symbolic zero.
  virtual void vjp(const Tensor<T>& gy, const bool* need, Tensor<T>* gx) = 0;
  virtual void vjp(const Var<T>& gy, const bool* need, Var<T>* gx) = 0;
  virtual Tensor<T> jvp(const Tensor<T>* tangents) = 0;

  Shape out_shape;
  // The thread whose reverse pass is walking this node (0: none). A pass claims every node
  // it walks, so a second thread walking the same graph at the same time is refused with an
  // AutodiffError instead of corrupting the scratch below (docs/engine.md, "Threads").
  std::atomic<std::uintptr_t> walker{0};
  // Engine scratch, valid during one traversal (identified by `mark`).
  std::uint64_t mark = 0;
  bool needed = false;
  bool is_target = false;
  int slot = -1;
  Tensor<T> buf_t;
  Var<T> buf_v;
};

}  // namespace detail
}  // namespace grokalign
