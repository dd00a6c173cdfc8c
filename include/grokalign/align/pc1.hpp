#pragma once
// PC1: how much of a sample's Jacobian lies along its first principal direction,
// s_1^2 / sum_i s_i^2 from the singular values of the C x d Jacobian (no centring).
#include <Eigen/SVD>
#include <algorithm>
#include <limits>
#include <string>

#include "grokalign/transforms.hpp"

namespace grokalign::align {

template <Scalar T>
struct Pc1Stats {
  Tensor<T> per_sample;  // [B]
  T mean;                // over the batch
};

// PC1 of one Jacobian given as a C x d row-major map; 0 for a zero Jacobian, NaN for one
// holding NaN or infinity (Eigen's SVD refuses such input and leaves its singular values
// unset: reading them gave garbage, found by the [errors] catalogue of issue 11).
template <class Derived>
typename Derived::Scalar pc1_of(const Eigen::MatrixBase<Derived>& jac) {
  using S = typename Derived::Scalar;
  if (!jac.allFinite()) return std::numeric_limits<S>::quiet_NaN();
  const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> dense = jac;
  Eigen::BDCSVD<Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>> svd(dense);
  const auto s = svd.singularValues();
  const S total = s.squaredNorm();
  return total > S(0) ? s(0) * s(0) / total : S(0);
}

// Per-sample Jacobians of `model` ([B, ...] -> [B, C], samples independent), computed
// `chunk` samples at a time to bound memory, by reverse mode (C passes) or forward mode
// (d passes), whichever is fewer; then PC1 of each.
template <Scalar T, class Model>
Pc1Stats<T> pc1(Model&& model, const Tensor<T>& x, index_t chunk = 64,
                JacobianMode mode = JacobianMode::kAuto) {
  if (x.rank() < 1) grokalign::detail::throw_shape("pc1", "input needs a batch axis");
  if (chunk < 1) grokalign::detail::throw_shape("pc1", "chunk must be positive");
  const index_t B = x.shape()[0];
  Pc1Stats<T> r{Tensor<T>::zeros(Shape{B}), T(0)};
  for (index_t start = 0; start < B; start += chunk) {
    const index_t n = std::min(chunk, B - start);
    const Tensor<T> jac = per_sample_jacobian<T>(model, x.rows(start, n), mode);  // [n, C, d]
    const index_t C = jac.shape()[1], d = jac.shape()[2];
    // A non-finite input sample gets NaN, as in the penalties: a ReLU network's Jacobian
    // there is finite but meaningless (docs/alignment.md).
    const index_t per = x.numel() / B;
    const auto xm = x.matrix(B, per);
    for (index_t b = 0; b < n; ++b)
      r.per_sample.data()[start + b] =
          xm.row(start + b).allFinite()
              ? pc1_of(typename Tensor<T>::ConstMatrixMap(jac.data() + b * C * d, C, d))
              : std::numeric_limits<T>::quiet_NaN();
  }
  r.mean = B ? r.per_sample.array().mean() : T(0);
  return r;
}

}  // namespace grokalign::align
