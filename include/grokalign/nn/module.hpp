#pragma once
// Module<T>: the base of every layer and model. It owns named parameters (leaf Vars) and
// named child modules, and answers the PyTorch-style questions about them: state_dict
// names ("0.weight", "blocks.0.attn.W_K"), which parameters train, freezing by name,
// train/eval mode.
//
// A module runs on every evaluation type of the engine: Tensor (values only), Var (reverse
// mode), Dual<Tensor> (forward mode, J u) and Dual<Var> (a recorded JVP, so that J u can be
// differentiated in the weights: reverse-over-forward). Virtual functions cannot be
// templates, so Module declares one virtual forward per type, and ModuleBase (CRTP)
// implements all four with one template `Derived::apply<X>`. Write a layer as
//
//   template <Scalar T>
//   class Scale : public ModuleBase<Scale<T>, T> {
//    public:
//     Scale() { s_ = this->register_parameter("s", Tensor<T>::ones(Shape{1})); }
//     template <class X> X apply(const X& x) const { return x * lift<X>(s_); }
//    private:
//     Var<T> s_;
//   };
//
// Modules are movable, not copyable: a copy would silently share its parameters.
#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include "grokalign/core/error.hpp"
#include "grokalign/core/random.hpp"
#include "grokalign/forward/dual.hpp"
#include "grokalign/ops/apply.hpp"
#include "grokalign/reverse/var.hpp"

namespace grokalign::nn {

// The four types a module evaluates on, for scalar type T.
template <class X, class T>
concept EvaluationType = std::is_same_v<X, Tensor<T>> || std::is_same_v<X, Var<T>> ||
    std::is_same_v<X, Dual<Tensor<T>>> || std::is_same_v<X, Dual<Var<T>>>;

// Parameters enter a module's generic apply<X> through grokalign::lift<X> (ops/apply.hpp):
// constants of forward mode (zero tangent, so a JVP is taken in the input only) and
// leaves of reverse mode (so Var and Dual<Var> evaluations record the path to them).
using grokalign::lift;

namespace internal {

inline std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1] ? 1 : 0)});
      diag = up;
    }
  }
  return row[b.size()];
}

// "no parameter named 'x'; did you mean 'a', 'b'?" with the closest names, or the full list
// when nothing is close and the list is short, so a typo is fixed without a debugger.
inline std::string missing_name_message(std::string_view name,
                                        const std::vector<std::string>& names) {
  std::string msg = "no parameter named '" + std::string(name) + "'";
  if (names.empty()) return msg + " (the module has no parameters)";
  std::vector<std::pair<std::size_t, std::string>> near;
  const std::size_t limit = std::max<std::size_t>(2, name.size() / 3);
  for (const auto& n : names) {
    const std::size_t d = edit_distance(name, n);
    const bool prefix_match = n.size() > name.size() && n.compare(0, name.size(), name) == 0;
    if (d <= limit || prefix_match) near.emplace_back(prefix_match ? 0 : d, n);
  }
  std::stable_sort(near.begin(), near.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  auto quoted = [](auto first, auto last, auto get) {
    std::string s;
    for (auto it = first; it != last; ++it) s += (s.empty() ? "'" : ", '") + get(*it) + "'";
    return s;
  };
  if (!near.empty()) {
    const auto last =
        near.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(4, near.size()));
    return msg + "; did you mean " +
           quoted(near.begin(), last, [](const auto& p) { return p.second; }) + "?";
  }
  constexpr std::size_t kListed = 16;
  const auto last = names.begin() + std::min(kListed, names.size());
  msg += "; the parameters are " + quoted(names.begin(), last, [](const auto& s) { return s; });
  if (names.size() > kListed) msg += ", ... (" + std::to_string(names.size()) + " in all)";
  return msg;
}

}  // namespace internal

template <Scalar T>
class Module {
 public:
  using scalar_type = T;
  using NamedParameters = std::vector<std::pair<std::string, Var<T>>>;
  using NamedModules = std::vector<std::pair<std::string, Module*>>;

  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Tensor<T> forward(const Tensor<T>& x) const = 0;
  virtual Var<T> forward(const Var<T>& x) const = 0;
  virtual Dual<Tensor<T>> forward(const Dual<Tensor<T>>& x) const = 0;
  virtual Dual<Var<T>> forward(const Dual<Var<T>>& x) const = 0;

  template <class X>
  requires EvaluationType<X, T> X operator()(const X& x) const { return forward(x); }

  // Every parameter with its state_dict name, depth first in registration order: a
  // module's own parameters, then each child's prefixed by "child.". A Var registered
  // twice (tied weights) is listed once, under its first name, as in PyTorch.
  NamedParameters named_parameters() const {
    NamedParameters out;
    std::unordered_set<const void*> seen;
    collect_parameters("", out, seen);
    return out;
  }
  std::vector<Var<T>> parameters() const {
    std::vector<Var<T>> out;
    for (auto& p : named_parameters()) out.push_back(std::move(p.second));
    return out;
  }
  // The parameters an optimiser should update: those not frozen.
  std::vector<Var<T>> trainable_parameters() const {
    std::vector<Var<T>> out;
    for (auto& p : named_parameters())
      if (p.second.requires_grad()) out.push_back(std::move(p.second));
    return out;
  }
  // Total number of scalars in all parameters.
  index_t num_parameters() const {
    index_t n = 0;
    for (const auto& p : named_parameters()) n += p.second.numel();
    return n;
  }

  // This module (named "") and every descendant, pre-order, with dotted names.
  NamedModules named_modules() {
    NamedModules out;
    collect_modules("", out);
    return out;
  }
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const {
    return children_;
  }

  // The parameter with this state_dict name; the error lists the closest names.
  Var<T> parameter(std::string_view name) const {
    for (auto& p : named_parameters())
      if (p.first == name) return p.second;
    throw Error("Module::parameter", internal::missing_name_message(name, parameter_names()));
  }
  bool has_parameter(std::string_view name) const {
    for (const auto& p : named_parameters())
      if (p.first == name) return true;
    return false;
  }
  std::vector<std::string> parameter_names() const {
    std::vector<std::string> out;
    for (auto& p : named_parameters()) out.push_back(std::move(p.first));
    return out;
  }

  // Mode flags for layers that behave differently in training (none of the built-in ones
  // do yet); set on the whole subtree, as torch's train()/eval().
  Module& train(bool on = true) {
    training_ = on;
    for (auto& c : children_) c.second->train(on);
    return *this;
  }
  Module& eval() { return train(false); }
  bool is_training() const noexcept { return training_; }

  // Drops every accumulated gradient (set_to_none, the default, as PyTorch 2 and
  // Optimizer::zero_grad; see there why), or zeroes the buffers in place with false.
  void zero_grad(bool set_to_none = true) {
    for (auto& p : named_parameters()) {
      if (set_to_none)
        p.second.set_grad(Tensor<T>());
      else
        p.second.zero_grad();
    }
  }

  // freeze("embed.W_E") stops that parameter from training: requires_grad becomes false,
  // so backward() no longer reaches it, any gradient it held is dropped, and it leaves
  // trainable_parameters(). A module path freezes everything under it: freeze("embed").
  void freeze(std::string_view name) { set_trainable(name, false, "Module::freeze"); }
  void unfreeze(std::string_view name) { set_trainable(name, true, "Module::unfreeze"); }

  // Draws fresh parameters (each layer's own default initialisation) from `gen`.
  virtual void reset_parameters(Generator& gen) {
    for (auto& c : children_) c.second->reset_parameters(gen);
  }

 protected:
  Module() = default;
  Module(Module&&) = default;
  Module& operator=(Module&&) = default;

  // Adds a leaf parameter under `name` and returns its handle (the module and the caller
  // share it, so a layer keeps the handle as a member for its forward pass).
  Var<T> register_parameter(std::string name, const Tensor<T>& value, bool requires_grad = true) {
    check_new_name(name, "register_parameter");
    if (!value.defined())
      throw Error("register_parameter", "parameter '" + name + "' has an undefined value");
    Var<T> v(value, requires_grad);
    params_.emplace_back(std::move(name), v);
    return v;
  }
  template <class M>
  requires std::is_base_of_v<Module, M> std::shared_ptr<M> register_module(
      std::string name, std::shared_ptr<M> module) {
    check_new_name(name, "register_module");
    if (!module) throw Error("register_module", "module '" + name + "' is null");
    children_.emplace_back(std::move(name), module);
    return module;
  }

 private:
  void collect_parameters(const std::string& prefix, NamedParameters& out,
                          std::unordered_set<const void*>& seen) const {
    for (const auto& [name, var] : params_)
      if (seen.insert(var.impl()).second) out.emplace_back(prefix + name, var);
    for (const auto& [name, child] : children_)
      child->collect_parameters(prefix + name + ".", out, seen);
  }
  void collect_modules(const std::string& name, NamedModules& out) {
    out.emplace_back(name, this);
    for (auto& [child_name, child] : children_)
      child->collect_modules(name.empty() ? child_name : name + "." + child_name, out);
  }
  void check_new_name(const std::string& name, const char* op) const {
    if (name.empty() || name.find('.') != std::string::npos)
      throw Error(op, "name '" + name + "' must be non-empty and contain no '.'");
    for (const auto& p : params_)
      if (p.first == name) throw Error(op, "a parameter named '" + name + "' already exists");
    for (const auto& c : children_)
      if (c.first == name) throw Error(op, "a child module named '" + name + "' already exists");
  }
  void set_trainable(std::string_view name, bool on, const char* op) {
    const std::string prefix = std::string(name) + ".";
    bool found = false;
    for (auto& [n, p] : named_parameters()) {
      if (n != name && n.compare(0, prefix.size(), prefix) != 0) continue;
      found = true;
      p.set_requires_grad(on);
      if (!on) p.set_grad(Tensor<T>());
    }
    if (!found) throw Error(op, internal::missing_name_message(name, parameter_names()));
  }

  NamedParameters params_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// Implements Module's four virtual forwards with one template, Derived::apply<X>(const X&).
template <class Derived, Scalar T>
class ModuleBase : public Module<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) const override { return run(x); }
  Var<T> forward(const Var<T>& x) const override { return run(x); }
  Dual<Tensor<T>> forward(const Dual<Tensor<T>>& x) const override { return run(x); }
  Dual<Var<T>> forward(const Dual<Var<T>>& x) const override { return run(x); }

 protected:
  ModuleBase() = default;

 private:
  template <class X>
  X run(const X& x) const {
    return static_cast<const Derived&>(*this).template apply<X>(x);
  }
};

}  // namespace grokalign::nn
