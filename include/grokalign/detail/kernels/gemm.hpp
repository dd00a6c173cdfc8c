#pragma once
// GEMM on Eigen's packed kernels, with packing buffers that each thread keeps between calls.
//
// Eigen's product expressions allocate their packing workspace on every call once it is
// larger than EIGEN_STACK_ALLOCATION_LIMIT (128 KiB), which every GEMM of a realistic
// layer is; its multi-threaded path even gives each thread a fresh buffer per call. A
// training step runs the same few products thousands of times, so here the workspace is a
// per-thread, grow-only buffer: after the first step, a product allocates nothing. The
// arithmetic is Eigen's own (general_matrix_matrix_product with its cache blocking); only
// the workspace and the split over threads are ours. The split gives each thread a band of
// the output, which it computes as an independent serial product.
//
// This uses Eigen 3.4's internal level-3 interface. Other Eigen versions, and builds that
// send products to an external BLAS, fall back to plain product expressions.
#include <Eigen/Core>
#include <algorithm>
#include <cstdlib>
#include <new>
#include <type_traits>
#include <utility>

#include "grokalign/core/tensor.hpp"
#include "grokalign/detail/kernels/parallel.hpp"

#if EIGEN_VERSION_AT_LEAST(3, 4, 0) && !EIGEN_VERSION_AT_LEAST(3, 4, 90) && !defined(EIGEN_USE_BLAS)
#define GROKALIGN_GEMM_REUSED_WORKSPACE 1
#else
#define GROKALIGN_GEMM_REUSED_WORKSPACE 0
#endif

namespace grokalign::kernels {

namespace gemm_detail {

// Products smaller than this many multiply-adds per thread are not split.
inline constexpr double kMinWorkPerThread = 64.0 * 64.0 * 64.0;

#if GROKALIGN_GEMM_REUSED_WORKSPACE

// A per-thread aligned buffer that only grows.
template <class T>
class GrowOnlyBuffer {
 public:
  GrowOnlyBuffer() = default;
  GrowOnlyBuffer(const GrowOnlyBuffer&) = delete;
  GrowOnlyBuffer& operator=(const GrowOnlyBuffer&) = delete;
  ~GrowOnlyBuffer() { std::free(data_); }

  T* reserve(std::size_t count) {
    if (count > capacity_) {
      constexpr std::size_t kAlign = 64;
      const std::size_t bytes = ((count * sizeof(T) + kAlign - 1) / kAlign) * kAlign;
      void* p = std::aligned_alloc(kAlign, bytes);
      if (!p) throw std::bad_alloc();
      std::free(data_);
      data_ = static_cast<T*>(p);
      capacity_ = count;
    }
    return data_;
  }

 private:
  T* data_ = nullptr;
  std::size_t capacity_ = 0;
};

// Eigen's blocking sizes for a (rows x depth) * (depth x cols) product, with the packed
// blocks placed in this thread's buffers instead of fresh allocations.
template <class T>
class ReusedBlocking : public Eigen::internal::level3_blocking<T, T> {
 public:
  ReusedBlocking(Eigen::Index rows, Eigen::Index cols, Eigen::Index depth) {
    this->m_mc = rows;
    this->m_nc = cols;
    this->m_kc = depth;
    Eigen::internal::computeProductBlockingSizes<T, T, 1>(this->m_kc, this->m_mc, this->m_nc,
                                                          Eigen::Index(1));
    thread_local GrowOnlyBuffer<T> packed_lhs, packed_rhs;
    this->m_blockA = packed_lhs.reserve(static_cast<std::size_t>(this->m_kc * this->m_mc));
    this->m_blockB = packed_rhs.reserve(static_cast<std::size_t>(this->m_kc * this->m_nc));
  }
};

// res (column-major, rows x cols, leading dimension ld) += lhs * rhs, where lhs is rows x
// depth and rhs depth x cols, each stored column-major (false) or row-major (true).
template <class T, bool LhsRowMajor, bool RhsRowMajor>
void serial_product(Eigen::Index rows, Eigen::Index cols, Eigen::Index depth, const T* lhs,
                    Eigen::Index lhs_stride, const T* rhs, Eigen::Index rhs_stride, T* res,
                    Eigen::Index ld) {
  using Eigen::ColMajor;
  using Eigen::RowMajor;
  using Product = Eigen::internal::general_matrix_matrix_product<
      Eigen::Index, T, LhsRowMajor ? RowMajor : ColMajor, false, T,
      RhsRowMajor ? RowMajor : ColMajor, false, ColMajor, 1>;
  ReusedBlocking<T> blocking(rows, cols, depth);
  Product::run(rows, cols, depth, lhs, lhs_stride, rhs, rhs_stride, res, 1, ld, T(1), blocking,
               nullptr);
}

template <class T, bool LhsRowMajor, bool RhsRowMajor>
void product(Eigen::Index rows, Eigen::Index cols, Eigen::Index depth, const T* lhs,
             Eigen::Index lhs_stride, const T* rhs, Eigen::Index rhs_stride, T* res,
             Eigen::Index ld, bool accumulate) {
  // One band of output columns [c0, c1): rhs columns c0.. and res columns c0..
  auto band_cols = [&](Eigen::Index c0, Eigen::Index c1) {
    if (c1 <= c0) return;
    T* r = res + c0 * ld;
    if (!accumulate)
      for (Eigen::Index c = c0; c < c1; ++c) std::fill_n(res + c * ld, rows, T(0));
    const T* b = RhsRowMajor ? rhs + c0 : rhs + c0 * rhs_stride;
    serial_product<T, LhsRowMajor, RhsRowMajor>(rows, c1 - c0, depth, lhs, lhs_stride, b,
                                                rhs_stride, r, ld);
  };
  // One band of output rows [r0, r1): lhs rows r0.. and res rows r0..
  auto band_rows = [&](Eigen::Index r0, Eigen::Index r1) {
    if (r1 <= r0) return;
    if (!accumulate)
      for (Eigen::Index c = 0; c < cols; ++c) std::fill_n(res + c * ld + r0, r1 - r0, T(0));
    const T* a = LhsRowMajor ? lhs + r0 * lhs_stride : lhs + r0;
    serial_product<T, LhsRowMajor, RhsRowMajor>(r1 - r0, cols, depth, a, lhs_stride, rhs,
                                                rhs_stride, res + r0, ld);
  };

  // Split the longer side in bands aligned to Eigen's register blocks.
  using Traits = Eigen::internal::gebp_traits<T, T>;
  const bool split_rows = rows >= cols;
  const Eigen::Index extent = split_rows ? rows : cols;
  const Eigen::Index unit = split_rows ? Traits::mr : Traits::nr;
  const Eigen::Index units = (extent + unit - 1) / unit;
  const double work = double(rows) * double(cols) * double(depth);
  const int threads = static_cast<int>(std::max<double>(
      1.0, std::min({double(available_threads()), work / kMinWorkPerThread, double(units)})));
  if (threads == 1) {
    band_cols(0, cols);
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads)
  {
    const Eigen::Index t = omp_get_thread_num(), nt = omp_get_num_threads();
    const Eigen::Index begin = std::min(extent, (units * t / nt) * unit);
    const Eigen::Index end = std::min(extent, (units * (t + 1) / nt) * unit);
    if (split_rows)
      band_rows(begin, end);
    else
      band_cols(begin, end);
  }
#endif
}

#endif  // GROKALIGN_GEMM_REUSED_WORKSPACE

// The plain Eigen expression: used for vector-shaped and tiny products (gemv and
// coefficient-wise paths, which need no packing workspace) and as the fallback.
template <class CMap, class AMap, class BMap>
void expression_gemm(CMap&& c, const AMap& a, bool ta, const BMap& b, bool tb, bool accumulate) {
  if (accumulate) {
    if (!ta && !tb)
      c.noalias() += a * b;
    else if (ta && !tb)
      c.noalias() += a.transpose() * b;
    else if (!ta && tb)
      c.noalias() += a * b.transpose();
    else
      c.noalias() += a.transpose() * b.transpose();
  } else {
    if (!ta && !tb)
      c.noalias() = a * b;
    else if (ta && !tb)
      c.noalias() = a.transpose() * b;
    else if (!ta && tb)
      c.noalias() = a * b.transpose();
    else
      c.noalias() = a.transpose() * b.transpose();
  }
}

}  // namespace gemm_detail

// C = op(A) op(B) for row-major maps (any outer strides, so C may be a block of a larger
// matrix): C is m x n, op(A) m x k, op(B) k x n. `accumulate` adds into C instead of
// overwriting it.
template <class CMap, class AMap, class BMap>
void gemm(CMap&& c, const AMap& a, bool ta, const BMap& b, bool tb, bool accumulate = false) {
#if GROKALIGN_GEMM_REUSED_WORKSPACE
  using T = typename std::remove_cvref_t<CMap>::Scalar;
  const Eigen::Index m = c.rows(), n = c.cols(), k = ta ? a.rows() : a.cols();
  if (m > 1 && n > 1 && k > 0 && m + n + k >= 20) {
    // Row-major C (m x n) is column-major C^T (n x m) = op(B)^T op(A)^T. A row-major
    // operand read column-major is its transpose, so op(B)^T is B's data read column-major
    // when B is not transposed, and row-major when it is (likewise for A).
    const T* pa = a.data();
    const T* pb = b.data();
    const Eigen::Index lda = a.outerStride(), ldb = b.outerStride(), ldc = c.outerStride();
    if (!tb && !ta)
      gemm_detail::product<T, false, false>(n, m, k, pb, ldb, pa, lda, c.data(), ldc, accumulate);
    else if (tb && !ta)
      gemm_detail::product<T, true, false>(n, m, k, pb, ldb, pa, lda, c.data(), ldc, accumulate);
    else if (!tb && ta)
      gemm_detail::product<T, false, true>(n, m, k, pb, ldb, pa, lda, c.data(), ldc, accumulate);
    else
      gemm_detail::product<T, true, true>(n, m, k, pb, ldb, pa, lda, c.data(), ldc, accumulate);
    return;
  }
#endif
  gemm_detail::expression_gemm(std::forward<CMap>(c), a, ta, b, tb, accumulate);
}

}  // namespace grokalign::kernels
