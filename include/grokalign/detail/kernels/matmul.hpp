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

// Below this many rows of G the 2 x 2 split in gram() is not worth its extra products.
inline constexpr index_t kGramSplit = 64;

// FLOPs of gram() for G of size n x n from factors of length d.
inline double gram_flops(index_t n, index_t d) {
  const double full = 2.0 * double(n) * double(n) * double(d);
  return n < kGramSplit ? full : 0.75 * full;
}

// The Gram matrix of a 2-D W: W W^T (rows) or W^T W (columns). Only the blocks on and below
// the diagonal of a 2 x 2 split are multiplied (3/4 of the FLOPs of the full product), and
// the upper triangle is the mirror of the lower, so the result is exactly symmetric.
template <class T>
Tensor<T> gram(const Tensor<T>& w, bool of_columns) {
  using Block = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0,
                           Eigen::OuterStride<>>;
  using ConstBlock =
      Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0,
                 Eigen::OuterStride<>>;
  const index_t rows = w.shape()[0], cols = w.shape()[1];
  const index_t n = of_columns ? cols : rows, d = of_columns ? rows : cols;
  Tensor<T> g = Tensor<T>::empty(Shape{n, n});
  // Rows [lo, hi) of W (columns, for W^T W), as a map into W.
  auto part = [&](index_t lo, index_t hi) {
    return of_columns ? ConstBlock(w.data() + lo, d, hi - lo, Eigen::OuterStride<>(cols))
                      : ConstBlock(w.data() + lo * cols, hi - lo, d, Eigen::OuterStride<>(cols));
  };
  auto block = [&](index_t r0, index_t r1, index_t c0, index_t c1) {
    return Block(g.data() + r0 * n + c0, r1 - r0, c1 - c0, Eigen::OuterStride<>(n));
  };
  // G[r0:r1, c0:c1] = part(r0, r1) part(c0, c1)^T in the orientation of W.
  auto product = [&](index_t r0, index_t r1, index_t c0, index_t c1) {
    gemm(block(r0, r1, c0, c1), part(r0, r1), of_columns, part(c0, c1), !of_columns);
  };
  if (n < kGramSplit) {
    product(0, n, 0, n);
  } else {
    const index_t h = n / 2;
    product(0, h, 0, h);
    product(h, n, 0, h);
    product(h, n, h, n);
  }
  // Mirror the lower triangle (a GEMM does not round G_ij and G_ji alike).
  for (index_t i = 0; i < n; ++i)
    for (index_t j = i + 1; j < n; ++j) g.data()[i * n + j] = g.data()[j * n + i];
  return g;
}

}  // namespace grokalign::kernels
