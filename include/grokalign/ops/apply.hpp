#pragma once
// The one place where a primitive meets the three ways of evaluating it. A primitive is a
// Rule struct (see ops/README in docs/engine.md) with:
//   kName, kSavesOutput, Params,
//   forward(params, const Tensor<T>* in)                  -> Tensor<T>
//   jvp(params, const X* tangents, const X* in, const X& out) -> X   (undefined = zero)
//   vjp(params, const X& gy, const X* in, const X& out, const bool* need, X* gx)
// where jvp and vjp are templates over X in {Tensor<T>, Var<T>} written with the
// library's differentiable ops, so the derivative of a derivative is again recorded.
// apply_op<Rule>() evaluates it on Tensors (value only), on Vars (value + graph node) and
// on Duals (value + tangent).
#include <array>
#include <string>
#include <type_traits>
#include <vector>

#include "grokalign/forward/dual.hpp"
#include "grokalign/reverse/var.hpp"

namespace grokalign {

template <class X>
struct is_tensor : std::false_type {};
template <class T>
struct is_tensor<Tensor<T>> : std::true_type {};
template <class X>
struct is_var : std::false_type {};
template <class T>
struct is_var<Var<T>> : std::true_type {};
template <class X>
struct is_dual : std::false_type {};
template <class X>
struct is_dual<Dual<X>> : std::true_type {};

// The types every differentiable op accepts.
template <class X>
concept Differentiable = is_tensor<X>::value || is_var<X>::value || is_dual<X>::value;

template <class X>
using scalar_of = typename X::value_type;

struct RuleBase {
  static constexpr bool kSavesOutput = false;
};

namespace detail {

template <class X>
void require_defined(const X& x, const char* op, std::size_t i) {
  if (!x.defined())
    throw_autodiff(op, "input " + std::to_string(i) + " is undefined (default-constructed)");
}

template <class X, std::size_t N>
using InputList = std::conditional_t<N == 0, std::vector<X>, std::array<X, N>>;

template <Scalar T, class Rule, std::size_t N>
struct OpNode final : Node<T> {
  using Params = typename Rule::Params;
  Params params;
  InputList<Var<T>, N> inputs;
  Tensor<T> out;  // kept only when the rules need the output

  OpNode(const Params& p, const InputList<Var<T>, N>& in) : params(p), inputs(in) {}

  const char* name() const noexcept override { return Rule::kName; }
  int num_inputs() const noexcept override { return static_cast<int>(inputs.size()); }
  const Var<T>& input(int i) const noexcept override { return inputs[i]; }

  InputList<Tensor<T>, N> input_values() const {
    InputList<Tensor<T>, N> v{};
    if constexpr (N == 0) v.resize(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) v[i] = inputs[i].value();
    return v;
  }
  Var<T> output_var() {
    // A saved output is handed to the rules as a Var whose grad_fn is this node (as
    // PyTorch's saved outputs are), so a second derivative flows back through it.
    if constexpr (Rule::kSavesOutput) {
      return Var<T>::from_node(out, Ref<Node<T>>(this));
    } else {
      return Var<T>();
    }
  }

  void vjp(const Tensor<T>& gy, const bool* need, Tensor<T>* gx) override {
    const auto in = input_values();
    Rule::vjp(params, gy, in.data(), out, need, gx);
  }
  void vjp(const Var<T>& gy, const bool* need, Var<T>* gx) override {
    const Var<T> o = output_var();
    Rule::vjp(params, gy, inputs.data(), o, need, gx);
  }
  Tensor<T> jvp(const Tensor<T>* tangents) override {
    const auto in = input_values();
    return Rule::jvp(params, tangents, in.data(), out);
  }
};

}  // namespace detail

// Plain tensors: the value only.
template <class Rule, Scalar T, std::size_t N>
Tensor<T> apply_op(const typename Rule::Params& p, const std::array<Tensor<T>, N>& in) {
  for (std::size_t i = 0; i < N; ++i) detail::require_defined(in[i], Rule::kName, i);
  return Rule::forward(p, in.data());
}
template <class Rule, Scalar T>
Tensor<T> apply_op(const typename Rule::Params& p, const std::vector<Tensor<T>>& in) {
  for (std::size_t i = 0; i < in.size(); ++i) detail::require_defined(in[i], Rule::kName, i);
  return Rule::forward(p, in.data());
}

namespace detail {
template <class Rule, Scalar T, std::size_t N>
Var<T> apply_var(const typename Rule::Params& p, const InputList<Var<T>, N>& in) {
  InputList<Tensor<T>, N> values{};
  if constexpr (N == 0) values.resize(in.size());
  bool any_grad = false;
  for (std::size_t i = 0; i < in.size(); ++i) {
    require_defined(in[i], Rule::kName, i);
    values[i] = in[i].value();
    any_grad = any_grad || in[i].requires_grad();
  }
  Tensor<T> out = Rule::forward(p, values.data());
  if (!any_grad || !GradMode::enabled()) return Var<T>(out);
  auto node = make_ref<OpNode<T, Rule, N>>(p, in);
  node->out_shape = out.shape();
  if constexpr (Rule::kSavesOutput) node->out = out;
  return Var<T>::from_node(out, std::move(node));
}

template <class Rule, class X, class In>
Dual<X> apply_dual(const typename Rule::Params& p, const In& in) {
  auto primals = [&] {
    if constexpr (std::is_same_v<In, std::vector<Dual<X>>>) {
      std::vector<X> v(in.size());
      for (std::size_t i = 0; i < in.size(); ++i) v[i] = in[i].primal();
      return v;
    } else {
      std::array<X, std::tuple_size_v<In>> v{};
      for (std::size_t i = 0; i < in.size(); ++i) v[i] = in[i].primal();
      return v;
    }
  }();
  auto tangents = primals;
  bool any_tangent = false;
  for (std::size_t i = 0; i < in.size(); ++i) {
    tangents[i] = in[i].tangent();
    any_tangent = any_tangent || in[i].tangent().defined();
  }
  X out = apply_op<Rule>(p, primals);
  if (!any_tangent) return Dual<X>(out);
  X t = Rule::jvp(p, tangents.data(), primals.data(), out);
  return Dual<X>(out, t);
}
}  // namespace detail

// Vars: the value, plus a node when some input requires grad and grad mode is on.
template <class Rule, Scalar T, std::size_t N>
Var<T> apply_op(const typename Rule::Params& p, const std::array<Var<T>, N>& in) {
  return detail::apply_var<Rule, T, N>(p, in);
}
template <class Rule, Scalar T>
Var<T> apply_op(const typename Rule::Params& p, const std::vector<Var<T>>& in) {
  return detail::apply_var<Rule, T, 0>(p, in);
}

// Duals: the value, plus the tangent from the JVP rule (skipped when all tangents are zero).
template <class Rule, class X, std::size_t N>
Dual<X> apply_op(const typename Rule::Params& p, const std::array<Dual<X>, N>& in) {
  return detail::apply_dual<Rule, X>(p, in);
}
template <class Rule, class X>
Dual<X> apply_op(const typename Rule::Params& p, const std::vector<Dual<X>>& in) {
  return detail::apply_dual<Rule, X>(p, in);
}

// The tensor inside a Tensor or a Var (rules use it for constants such as ReLU's mask).
template <Scalar T>
const Tensor<T>& value_of(const Tensor<T>& x) {
  return x;
}
template <Scalar T>
const Tensor<T>& value_of(const Var<T>& x) {
  return x.value();
}
// A constant of x's kind (Tensor or Var that does not require grad) wrapping `t`.
template <class X>
X constant_like(const X&, const Tensor<scalar_of<X>>& t) {
  if constexpr (is_dual<X>::value)
    return X(constant_like(typename X::primal_type(), t));
  else if constexpr (is_var<X>::value)
    return X(t);
  else
    return t;
}

// A parameter (a Var) as a value of the evaluation type X, so one generic model serves
// every mode: Tensor -> its value, Var -> itself, Dual -> a zero-tangent dual of either.
template <class X, Scalar T>
X lift(const Var<T>& p) {
  if constexpr (is_dual<X>::value)
    return X(lift<typename X::primal_type>(p));
  else if constexpr (is_var<X>::value)
    return p;
  else
    return p.value();
}

// Sum of two possibly-undefined (symbolic zero) values.
template <class X>
X accumulate(const X& a, const X& b) {
  if (!a.defined()) return b;
  if (!b.defined()) return a;
  return a + b;
}

}  // namespace grokalign
