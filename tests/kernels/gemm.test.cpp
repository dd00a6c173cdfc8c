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
