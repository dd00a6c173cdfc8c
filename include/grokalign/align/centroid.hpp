#pragma once
// Centroids and centroid alignment. The centroid of a model f at x is the sum of the rows
// of its Jacobian, c(x) = J(x)^T 1 = grad_x sum_j f_j(x): one VJP with a vector of ones
// for the whole batch. Centroid alignment is the cosine similarity between c(x) and x.
#include <algorithm>
#include <cmath>
#include <string>

#include "grokalign/core/random.hpp"
#include "grokalign/ops.hpp"
#include "grokalign/reverse.hpp"

namespace grokalign::align {

template <Scalar T>
struct CentroidStats {
  Tensor<T> centroid;   // same shape as the input batch
  Tensor<T> inner;      // [B] <c_b, x_b>
  Tensor<T> norm;       // [B] |c_b|
  Tensor<T> alignment;  // [B] <c_b, x_b> / max(|c_b| |x_b|, 1e-8)
};

namespace detail {

template <Scalar T>
CentroidStats<T> stats_from_centroids(const Tensor<T>& c, const Tensor<T>& x) {
  const index_t B = x.shape()[0], d = B ? x.numel() / B : 0;
  CentroidStats<T> s{c, Tensor<T>::empty(Shape{B}), Tensor<T>::empty(Shape{B}),
                     Tensor<T>::empty(Shape{B})};
  const auto cm = c.matrix(B, d);
  const auto xm = x.matrix(B, d);
  for (index_t b = 0; b < B; ++b) {
    const T inner = cm.row(b).dot(xm.row(b));
    const T cn = cm.row(b).norm();
    s.inner.data()[b] = inner;
    s.norm.data()[b] = cn;
    s.alignment.data()[b] = inner / std::max(cn * xm.row(b).norm(), T(1e-8));
  }
  return s;
}

template <Scalar T, class Model>
Tensor<T> centroid_tensor(Model&& model, const Tensor<T>& x) {
  if (x.rank() < 1) grokalign::detail::throw_shape("centroids", "input needs a batch axis");
  const Var<T> xv(x, true);
  const Var<T> out = model(xv);
  if (out.rank() < 1 || out.shape()[0] != x.shape()[0])
    grokalign::detail::throw_shape("centroids", "model output " + out.shape().to_string() +
                                                    " has no batch axis matching input " +
                                                    x.shape().to_string());
  auto g = grad<T>({out}, {xv}, {Var<T>(Tensor<T>::ones(out.shape()))},
                   {.create_graph = false, .allow_unused = true})[0];
  return g.defined() ? g.value() : Tensor<T>::zeros(x.shape());
}

}  // namespace detail

// Centroid, inner product, norm and alignment of each sample of the batch x. `model` maps
// [B, ...] to [B, ...] with samples independent (any model without batch coupling); for a
// scalar-output model the centroid is the input gradient. To take the centroid of an
// intermediate layer's output, pass the sub-model that ends at that layer.
template <Scalar T, class Model>
CentroidStats<T> centroids(Model&& model, const Tensor<T>& x) {
  return detail::stats_from_centroids(detail::centroid_tensor(model, x), x);
}

struct LocalCentroidOptions {
  int samples = 16;    // Gaussian perturbations averaged per point
  double noise = 0.1;  // their standard deviation
};

// The local centroid: the mean centroid over Gaussian perturbations of each x, aligned
// against the unperturbed x.
template <Scalar T, class Model>
CentroidStats<T> local_centroids(Model&& model, const Tensor<T>& x, Generator& gen,
                                 const LocalCentroidOptions& opt = {}) {
  if (opt.samples < 1)
    grokalign::detail::throw_shape(
        "local_centroids", "samples must be at least 1, got " + std::to_string(opt.samples));
  Tensor<T> mean_c = Tensor<T>::zeros(x.shape());
  for (int s = 0; s < opt.samples; ++s) {
    Tensor<T> xp = x.clone();
    for (T& v : xp) v += static_cast<T>(gen.normal(0.0, opt.noise));
    mean_c.array() += detail::centroid_tensor(model, xp).array();
  }
  mean_c.array() /= static_cast<T>(opt.samples);
  return detail::stats_from_centroids(mean_c, x);
}

}  // namespace grokalign::align
