#pragma once
// Matrix products on Eigen's GEMM. Transposes are flags, never materialised copies, so the
// backward rules (which multiply by transposes) cost exactly one GEMM each.
#include "grokalign/detail/kernels/elementwise.hpp"
#include "grokalign/detail/kernels/gemm.hpp"

namespace grokalign::kernels {

struct MatmulDims {
  index_t m, k, n;  // op(A) is m x k, op(B) is k x n
  Shape out;
  index_t batch;  // number of products
  bool a_batched, b_batched;
};

// Shapes: A [..., r, c] and B [..., r, c] with equal batch axes, or one of them 2-D (shared
// by every product). Throws naming both shapes on a mismatch.
inline MatmulDims matmul_dims(const Shape& a, const Shape& b, bool ta, bool tb) {
  auto fail = [&](const std::string& why) {
    detail::throw_shape("matmul", "shapes " + a.to_string() + (ta ? "^T" : "") + " and " +
                                      b.to_string() + (tb ? "^T" : "") + ": " + why);
  };
  if (a.rank() < 2 || b.rank() < 2) fail("both operands need at least 2 axes");
  const int ra = a.rank(), rb = b.rank();
  MatmulDims d{};
  d.m = ta ? a[ra - 1] : a[ra - 2];
  const index_t ka = ta ? a[ra - 2] : a[ra - 1];
  const index_t kb = tb ? b[rb - 1] : b[rb - 2];
  d.n = tb ? b[rb - 2] : b[rb - 1];
  if (ka != kb)
    fail("inner dimensions " + std::to_string(ka) + " and " + std::to_string(kb) + " differ");
  d.k = ka;
  d.a_batched = ra > 2;
  d.b_batched = rb > 2;
  if (d.a_batched && d.b_batched) {
    if (ra != rb) fail("batch axes differ");
    for (int i = 0; i < ra - 2; ++i)
      if (a[i] != b[i]) fail("batch axes differ");
  }
  const Shape& batch_src = d.a_batched ? a : b;
  const int rbatch = batch_src.rank() - 2;
  for (int i = 0; i < rbatch; ++i) d.out.push_back(batch_src[i]);
  d.batch = batch_src.prod(0, rbatch);
  d.out.push_back(d.m);
  d.out.push_back(d.n);
  return d;
}

template <class T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b, bool ta, bool tb) {
  const MatmulDims d = matmul_dims(a.shape(), b.shape(), ta, tb);
  Tensor<T> out = Tensor<T>::empty(d.out);
  const index_t ar = ta ? d.k : d.m, ac = ta ? d.m : d.k;
  const index_t br = tb ? d.n : d.k, bc = tb ? d.k : d.n;
  // A batch of row-major A times one shared B is a single tall GEMM.
  if (d.a_batched && !d.b_batched && !ta) {
    gemm(out.matrix(d.batch * d.m, d.n), a.matrix(d.batch * d.m, d.k), false, b.matrix(br, bc), tb);
    return out;
  }
  for (index_t i = 0; i < d.batch; ++i) {
    const T* pa = a.data() + (d.a_batched ? i * ar * ac : 0);
    const T* pb = b.data() + (d.b_batched ? i * br * bc : 0);
    using CM = typename Tensor<T>::ConstMatrixMap;
    using M = typename Tensor<T>::MatrixMap;
    gemm(M(out.data() + i * d.m * d.n, d.m, d.n), CM(pa, ar, ac), ta, CM(pb, br, bc), tb);
  }
  return out;
}

}  // namespace grokalign::kernels
