// kernels::gemm against a naive triple loop, for every transpose combination, overwrite and
// accumulate, shapes that take the packed path (split by rows and by columns over threads)
// and shapes that take Eigen's vector and tiny-product paths.
#include <catch2/catch.hpp>
#include <grokalign/grokalign.hpp>
#include <tuple>

#if defined(_OPENMP)
#include <omp.h>
#endif

using namespace grokalign;

namespace {

template <class T>
Tensor<T> naive(const Tensor<T>& a, bool ta, const Tensor<T>& b, bool tb, index_t m, index_t k,
                index_t n) {
  Tensor<T> c = Tensor<T>::zeros(Shape{m, n});
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) {
      double s = 0;
      for (index_t l = 0; l < k; ++l) {
        const double av = ta ? a.data()[l * m + i] : a.data()[i * k + l];
        const double bv = tb ? b.data()[j * k + l] : b.data()[l * n + j];
        s += av * bv;
      }
      c.data()[i * n + j] = static_cast<T>(s);
    }
  return c;
}

template <class T>
void check_gemm(index_t m, index_t k, index_t n, bool ta, bool tb, double tol) {
  Generator gen(static_cast<std::uint64_t>(m * 10007 + k * 101 + n + ta * 2 + tb));
  const Tensor<T> a = randn<T>(ta ? Shape{k, m} : Shape{m, k}, gen);
  const Tensor<T> b = randn<T>(tb ? Shape{n, k} : Shape{k, n}, gen);
  const Tensor<T> expect = naive(a, ta, b, tb, m, k, n);
  INFO("m " << m << " k " << k << " n " << n << " ta " << ta << " tb " << tb);

  Tensor<T> c = Tensor<T>::full(Shape{m, n}, T(7));  // overwritten, whatever it held
  kernels::gemm(c.matrix(m, n), a.matrix(), ta, b.matrix(), tb);
  Tensor<T> acc = Tensor<T>::ones(Shape{m, n});
  kernels::gemm(acc.matrix(m, n), a.matrix(), ta, b.matrix(), tb, /*accumulate=*/true);
  double worst = 0, worst_acc = 0;
  for (index_t i = 0; i < m * n; ++i) {
    const double scale = 1.0 + std::abs(double(expect.data()[i]));
    worst = std::max(worst, std::abs(double(c.data()[i]) - double(expect.data()[i])) / scale);
    worst_acc = std::max(worst_acc,
                         std::abs(double(acc.data()[i]) - 1.0 - double(expect.data()[i])) / scale);
  }
  CHECK(worst < tol);
  CHECK(worst_acc < tol);
}

}  // namespace

TEST_CASE("gemm matches a naive product for every transpose, size and thread count",
          "[kernels][gemm]") {
  const auto [m, k, n] = GENERATE(table<index_t, index_t, index_t>({
      {160, 300, 96},  // packed path, rows split over threads
      {96, 160, 300},  // a weight-gradient shape
      {10, 196, 256},  // columns longer than rows: columns split
      {67, 129, 33},   // sizes that are no multiple of any register block
      {1, 50, 40},     // a row vector: gemv path
      {40, 50, 1},     // a column vector
      {3, 4, 5},       // tiny: coefficient-wise path
      {300, 1, 200},   // depth one
  }));
  const int threads = GENERATE(1, 2);
#if defined(_OPENMP)
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
#endif
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      check_gemm<double>(m, k, n, ta, tb, 1e-12);
      check_gemm<float>(m, k, n, ta, tb, 1e-4);
    }
#if defined(_OPENMP)
  omp_set_num_threads(saved);
#endif
  (void)threads;
}

TEST_CASE("gemm writes into a block of a larger matrix and nowhere else", "[kernels][gemm]") {
  Generator gen(77);
  const index_t m = 40, k = 50, n = 30, big_rows = 45, big_cols = 70, r0 = 3, c0 = 25;
  const Tensor<double> a = randn<double>(Shape{m, k}, gen), b = randn<double>(Shape{k, n}, gen);
  const Tensor<double> expect = naive(a, false, b, false, m, k, n);
  for (bool accumulate : {false, true}) {
    Tensor<double> big = Tensor<double>::full(Shape{big_rows, big_cols}, 2.0);
    Eigen::Map<Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0,
               Eigen::OuterStride<>>
        block(big.data() + r0 * big_cols + c0, m, n, Eigen::OuterStride<>(big_cols));
    kernels::gemm(block, a.matrix(), false, b.matrix(), false, accumulate);
    double worst = 0;
    for (index_t i = 0; i < big_rows; ++i)
      for (index_t j = 0; j < big_cols; ++j) {
        const bool inside = i >= r0 && i < r0 + m && j >= c0 && j < c0 + n;
        const double want =
            inside ? expect.data()[(i - r0) * n + (j - c0)] + (accumulate ? 2.0 : 0.0) : 2.0;
        worst = std::max(worst, std::abs(big.data()[i * big_cols + j] - want));
      }
    INFO("accumulate " << accumulate);
    CHECK(worst < 1e-11);
  }
}

TEST_CASE("gram is W W^T or W^T W, exactly symmetric", "[kernels][gemm]") {
  const index_t n = GENERATE(5, 64, 129);
  Generator gen(static_cast<std::uint64_t>(n));
  const Tensor<double> w = randn<double>(Shape{n, 37}, gen);
  const Tensor<double> wt = randn<double>(Shape{37, n}, gen);
  for (bool of_columns : {false, true}) {
    const Tensor<double>& src = of_columns ? wt : w;
    const Tensor<double> g = kernels::gram(src, of_columns);
    const Tensor<double> expect =
        of_columns ? naive(wt, true, wt, false, n, 37, n) : naive(w, false, w, true, n, 37, n);
    double worst = 0;
    bool symmetric = true;
    for (index_t i = 0; i < n; ++i)
      for (index_t j = 0; j < n; ++j) {
        worst = std::max(worst, std::abs(g.data()[i * n + j] - expect.data()[i * n + j]));
        symmetric = symmetric && g.data()[i * n + j] == g.data()[j * n + i];
      }
    INFO("n " << n << " of_columns " << of_columns);
    CHECK(worst < 1e-11);
    CHECK(symmetric);
  }
}
