#pragma once
// The empirical neural tangent kernel of a scalar-output model against one sample point:
// K_i = <grad_theta f(x0), grad_theta f(x_i)> for every training point, and the rate of
// change of alignment lr * mean_i(K_i r_i) with r_i = y_i - sigmoid(f(x_i)).
//
// K over all points is a single Jacobian-vector product in parameter space: the gradient
// at x0 is pushed forward through the recorded graph of f(X) (forward mode over the
// graph), instead of one backward pass per point.
#include <string>
#include <vector>

#include "grokalign/ops.hpp"
#include "grokalign/reverse.hpp"
#include "grokalign/transforms.hpp"

namespace grokalign::align {

template <Scalar T>
struct NtkStats {
  Tensor<T> kernel;  // [n] K_i
  T kernel_mean;     // mean_i K_i
  T rate_of_change;  // lr * mean_i(K_i * r_i)
};

template <Scalar T>
Tensor<T> flat_output(const Var<T>& out, index_t n, const char* op) {
  if (out.numel() != n)
    grokalign::detail::throw_shape(
        op, "the model must return one value per point ([n] or [n, 1]), got " +
                out.shape().to_string() + " for " + std::to_string(n) + " points");
  return out.value().reshape(Shape{n});
}

// `model` maps [n, ...] to [n] or [n, 1] (already multiplied by any output scale);
// `params` are the Vars it reads (requires_grad); x0 is one point shaped [1, ...].
template <Scalar T, class Model>
NtkStats<T> empirical_ntk(Model&& model, const std::vector<Var<T>>& params, const Tensor<T>& x0,
                          const Tensor<T>& X, const Tensor<T>& y, T lr) {
  constexpr const char* op = "empirical_ntk";
  if (X.rank() < 1 || x0.rank() < 1 || x0.shape()[0] != 1)
    grokalign::detail::throw_shape(op, "x0 must be one point [1, ...] and X a batch [n, ...]");
  const index_t n = X.shape()[0];
  if (y.numel() != n)
    grokalign::detail::throw_shape(
        op, std::to_string(y.numel()) + " targets for " + std::to_string(n) + " points");
  const Var<T> f0 = model(Var<T>(x0));
  flat_output(f0, 1, op);
  auto g0 = grad<T>({f0}, params, {}, {.create_graph = false, .allow_unused = true});
  std::vector<Tensor<T>> direction;
  for (std::size_t i = 0; i < params.size(); ++i)
    direction.push_back(g0[i].defined() ? g0[i].value() : Tensor<T>::zeros(params[i].shape()));

  const Var<T> fx = model(Var<T>(X));
  const Tensor<T> K = jvp_graph<T>({fx}, params, direction)[0].reshape(Shape{n});
  const Tensor<T> f = flat_output(fx, n, op);
  NtkStats<T> s{K, n ? K.array().mean() : T(0), T(0)};
  T acc = 0;
  for (index_t i = 0; i < n; ++i)
    acc += K.data()[i] * (y.data()[i] - kernels::stable_sigmoid(f.data()[i]));
  s.rate_of_change = n ? lr * acc / static_cast<T>(n) : T(0);
  return s;
}

}  // namespace grokalign::align
