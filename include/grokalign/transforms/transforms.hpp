#pragma once
// Function transforms in the style of JAX and torch.func: vjp, jvp, jacobians (reverse,
// forward, per sample) and Hessian-vector products. Functions are generic callables so
// the same code runs on Vars (reverse mode) and Duals (forward mode), e.g.
//   auto f = [](const auto& x) { return sum(tanh(x) * x); };
#include <string>
#include <utility>
#include <vector>

#include "grokalign/forward/graph_jvp.hpp"
#include "grokalign/ops/layout.hpp"
#include "grokalign/reverse/engine.hpp"

namespace grokalign {

template <Scalar T>
struct VjpResult {
  Tensor<T> value;
  std::vector<Tensor<T>> cotangents;  // one per primal
};
template <Scalar T>
struct JvpResult {
  Tensor<T> value;
  Tensor<T> tangent;
};

// f(primals) and J^T cotangent. f takes `const std::vector<Var<T>>&` and returns a Var.
template <Scalar T, class F>
VjpResult<T> vjp(F&& f, const std::vector<Tensor<T>>& primals, const Tensor<T>& cotangent) {
  std::vector<Var<T>> xs;
  for (const auto& p : primals) xs.emplace_back(p, true);
  const Var<T> y = f(xs);
  if (!(cotangent.shape() == y.shape()))
    detail::throw_shape("vjp", "cotangent of shape " + cotangent.shape().to_string() +
                                   " for an output of shape " + y.shape().to_string());
  VjpResult<T> r{y.value(), {}};
  std::vector<Var<T>> g(xs.size());
  // A function that ignores its inputs has a zero derivative, not an error.
  if (y.requires_grad())
    g = grad<T>({y}, xs, {Var<T>(cotangent)}, {.create_graph = false, .allow_unused = true});
  for (std::size_t i = 0; i < g.size(); ++i)
    r.cotangents.push_back(g[i].defined() ? g[i].value() : Tensor<T>::zeros(primals[i].shape()));
  return r;
}

// f(primals) and J tangents, by forward mode. f takes `const std::vector<Dual<Tensor<T>>>&`.
template <Scalar T, class F>
JvpResult<T> jvp(F&& f, const std::vector<Tensor<T>>& primals,
                 const std::vector<Tensor<T>>& tangents) {
  if (primals.size() != tangents.size())
    detail::throw_autodiff("jvp", std::to_string(tangents.size()) + " tangents for " +
                                      std::to_string(primals.size()) + " primals");
  std::vector<Dual<Tensor<T>>> xs;
  for (std::size_t i = 0; i < primals.size(); ++i) {
    if (!(primals[i].shape() == tangents[i].shape()))
      detail::throw_shape("jvp", "tangent " + std::to_string(i) + " has shape " +
                                     tangents[i].shape().to_string() + " but primal has shape " +
                                     primals[i].shape().to_string());
    xs.emplace_back(primals[i], tangents[i]);
  }
  const Dual<Tensor<T>> y = f(xs);
  Tensor<T> t = y.tangent().defined() ? y.tangent() : Tensor<T>::zeros(y.shape());
  return {y.primal(), t};
}

enum class JacobianMode { kAuto, kReverse, kForward };

// Full Jacobian of a single-input function, shaped out.shape + x.shape. Reverse mode costs
// one pass per output element, forward mode one per input element; kAuto picks the fewer.
template <Scalar T, class F>
Tensor<T> jacobian(F&& f, const Tensor<T>& x, JacobianMode mode = JacobianMode::kAuto) {
  Shape out_shape;
  {
    NoGradGuard no_grad;
    out_shape = f(Var<T>(x)).shape();
  }
  const index_t m = out_shape.numel(), n = x.numel();
  if (mode == JacobianMode::kAuto) mode = m <= n ? JacobianMode::kReverse : JacobianMode::kForward;
  Shape js = out_shape;
  for (index_t d : x.shape()) js.push_back(d);
  Tensor<T> jac = Tensor<T>::zeros(js);
  if (mode == JacobianMode::kReverse) {
    Var<T> xv(x, true);
    const Var<T> y = f(xv);
    Tensor<T> seed = Tensor<T>::zeros(out_shape);
    for (index_t i = 0; i < m && y.requires_grad(); ++i) {
      seed.data()[i] = T(1);
      auto g = grad<T>({y}, {xv}, {Var<T>(seed)}, {.create_graph = false, .allow_unused = true});
      if (g[0].defined()) std::copy_n(g[0].value().data(), n, jac.data() + i * n);
      seed.data()[i] = T(0);
    }
  } else {
    Tensor<T> u = Tensor<T>::zeros(x.shape());
    for (index_t j = 0; j < n; ++j) {
      u.data()[j] = T(1);
      const Dual<Tensor<T>> y = f(Dual<Tensor<T>>(x, u));
      if (y.tangent().defined())
        for (index_t i = 0; i < m; ++i) jac.data()[i * n + j] = y.tangent().data()[i];
      u.data()[j] = T(0);
    }
  }
  return jac;
}

// Jacobians of each sample of a batched model f: [B, ...] -> [B, C], where sample b's
// output depends only on sample b's input. Returns [B, C, d] with d the per-sample size.
// Reverse mode uses C passes for the whole batch, forward mode d passes.
template <Scalar T, class F>
Tensor<T> per_sample_jacobian(F&& f, const Tensor<T>& x, JacobianMode mode = JacobianMode::kAuto) {
  if (x.rank() < 1) detail::throw_shape("per_sample_jacobian", "input needs a batch axis");
  const index_t B = x.shape()[0], d = B ? x.numel() / B : 0;
  Shape out_shape;
  {
    NoGradGuard no_grad;
    out_shape = f(Var<T>(x)).shape();
  }
  if (out_shape.rank() != 2 || out_shape[0] != B)
    detail::throw_shape("per_sample_jacobian",
                        "model output must be [batch, outputs], got " + out_shape.to_string());
  const index_t C = out_shape[1];
  if (mode == JacobianMode::kAuto) mode = C <= d ? JacobianMode::kReverse : JacobianMode::kForward;
  Tensor<T> jac = Tensor<T>::zeros(Shape{B, C, d});
  if (mode == JacobianMode::kReverse) {
    Var<T> xv(x, true);
    const Var<T> y = f(xv);
    Tensor<T> seed = Tensor<T>::zeros(out_shape);
    for (index_t c = 0; c < C && y.requires_grad(); ++c) {
      for (index_t b = 0; b < B; ++b) seed.data()[b * C + c] = T(1);
      auto g = grad<T>({y}, {xv}, {Var<T>(seed)}, {.create_graph = false, .allow_unused = true});
      if (g[0].defined())
        for (index_t b = 0; b < B; ++b)
          std::copy_n(g[0].value().data() + b * d, d, jac.data() + (b * C + c) * d);
      for (index_t b = 0; b < B; ++b) seed.data()[b * C + c] = T(0);
    }
  } else {
    Tensor<T> u = Tensor<T>::zeros(x.shape());
    for (index_t j = 0; j < d; ++j) {
      for (index_t b = 0; b < B; ++b) u.data()[b * d + j] = T(1);
      const Dual<Tensor<T>> y = f(Dual<Tensor<T>>(x, u));
      if (y.tangent().defined())
        for (index_t b = 0; b < B; ++b)
          for (index_t c = 0; c < C; ++c)
            jac.data()[(b * C + c) * d + j] = y.tangent().data()[b * C + c];
      for (index_t b = 0; b < B; ++b) u.data()[b * d + j] = T(0);
    }
  }
  return jac;
}

enum class HvpMode { kForwardOverReverse, kReverseOverForward, kReverseOverReverse };

// Hessian of a scalar function at x applied to u.
template <Scalar T, class F>
Tensor<T> hvp(F&& f, const Tensor<T>& x, const Tensor<T>& u,
              HvpMode mode = HvpMode::kForwardOverReverse) {
  if (!(x.shape() == u.shape()))
    detail::throw_shape("hvp", "direction of shape " + u.shape().to_string() +
                                   " for a point of shape " + x.shape().to_string());
  Var<T> xv(x, true);
  switch (mode) {
    case HvpMode::kForwardOverReverse: {
      const Var<T> y = f(xv);
      if (y.numel() != 1)
        detail::throw_shape("hvp", "f must return a scalar, got " + y.shape().to_string());
      const Var<T> g = grad<T>({y}, {xv}, {}, {.create_graph = true})[0];
      return jvp_graph<T>({g}, {xv}, {u})[0];
    }
    case HvpMode::kReverseOverForward: {
      const Dual<Var<T>> y = f(Dual<Var<T>>(xv, Var<T>(u)));
      if (y.numel() != 1)
        detail::throw_shape("hvp", "f must return a scalar, got " + y.shape().to_string());
      if (!y.tangent().defined() || !y.tangent().requires_grad())
        return Tensor<T>::zeros(x.shape());
      auto h = grad<T>({y.tangent()}, {xv}, {}, {.create_graph = false, .allow_unused = true})[0];
      return h.defined() ? h.value() : Tensor<T>::zeros(x.shape());
    }
    case HvpMode::kReverseOverReverse: {
      const Var<T> y = f(xv);
      if (y.numel() != 1)
        detail::throw_shape("hvp", "f must return a scalar, got " + y.shape().to_string());
      const Var<T> g = grad<T>({y}, {xv}, {}, {.create_graph = true})[0];
      if (!g.requires_grad()) return Tensor<T>::zeros(x.shape());
      auto h = grad<T>({g}, {xv}, {Var<T>(u)}, {.create_graph = false, .allow_unused = true})[0];
      return h.defined() ? h.value() : Tensor<T>::zeros(x.shape());
    }
  }
  return Tensor<T>();
}

}  // namespace grokalign
