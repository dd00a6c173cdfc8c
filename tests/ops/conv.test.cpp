// conv2d, its two adjoints and average pooling: values against direct loops, the adjoint
// identities that tie the family together, and first/second derivatives in every mode.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "grokalign/core/random.hpp"
#include "grokalign/ops/activation.hpp"
#include "grokalign/ops/conv.hpp"
#include "grokalign/testing/gradcheck.hpp"

using namespace grokalign;
using Catch::Contains;

namespace {

template <Scalar T>
Tensor<T> random(const Shape& s, std::uint64_t seed) {
  Generator gen(seed);
  return randn<T>(s, gen);
}

// The definition, with nothing shared with the im2col kernels.
template <Scalar T>
Tensor<T> reference_conv2d(const Tensor<T>& x, const Tensor<T>& w, index_t s, index_t p) {
  const index_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3);
  const index_t o = w.dim(0), kh = w.dim(2), kw = w.dim(3);
  const index_t oh = (h + 2 * p - kh) / s + 1, ow = (wd + 2 * p - kw) / s + 1;
  Tensor<T> y = Tensor<T>::zeros(Shape{n, o, oh, ow});
  for (index_t b = 0; b < n; ++b)
    for (index_t f = 0; f < o; ++f)
      for (index_t r = 0; r < oh; ++r)
        for (index_t q = 0; q < ow; ++q) {
          double acc = 0;
          for (index_t ch = 0; ch < c; ++ch)
            for (index_t i = 0; i < kh; ++i)
              for (index_t j = 0; j < kw; ++j) {
                const index_t ih = r * s - p + i, iw = q * s - p + j;
                if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
                acc += double(x.at(b, ch, ih, iw)) * double(w.at(f, ch, i, j));
              }
          y.at(b, f, r, q) = static_cast<T>(acc);
        }
  return y;
}

template <Scalar T>
Tensor<T> reference_avg_pool2d(const Tensor<T>& x, index_t k, index_t s) {
  const index_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
  const index_t oh = (h - k) / s + 1, ow = (w - k) / s + 1;
  Tensor<T> y = Tensor<T>::zeros(Shape{n, c, oh, ow});
  for (index_t b = 0; b < n; ++b)
    for (index_t ch = 0; ch < c; ++ch)
      for (index_t r = 0; r < oh; ++r)
        for (index_t q = 0; q < ow; ++q) {
          double acc = 0;
          for (index_t i = 0; i < k; ++i)
            for (index_t j = 0; j < k; ++j) acc += x.at(b, ch, r * s + i, q * s + j);
          y.at(b, ch, r, q) = static_cast<T>(acc / double(k * k));
        }
  return y;
}

template <Scalar T>
void require_close(const Tensor<T>& got, const Tensor<T>& want, double tol) {
  REQUIRE(got.shape() == want.shape());
  for (index_t i = 0; i < got.numel(); ++i) {
    INFO("element " << i);
    CHECK(double(got.data()[i]) == Approx(double(want.data()[i])).margin(tol).epsilon(tol));
  }
}

// The full harness: values in every mode, VJP, JVP, graph JVP, adjoint, and the three
// second-order compositions, each against finite differences.
template <class F>
void require_gradcheck(F f, const std::vector<Tensor<double>>& inputs) {
  const testing::GradcheckReport r = testing::gradcheck(f, inputs);
  INFO(r.message);
  CHECK(r.ok);
  CHECK(r.checks > 0);
}

double dot(const Tensor<double>& a, const Tensor<double>& b) {
  REQUIRE(a.shape() == b.shape());
  return (a.array() * b.array()).sum();
}

struct ConvCase {
  index_t n, c, h, w, o, kh, kw, stride, pad;
};

// Non-square inputs and kernels, C > 1, O > 1, N > 1, strides that do and do not divide the
// padded extent (the last input rows are then never read), the 1x1 fast path, a kernel as
// large as the padded input, and batches big enough to be split across threads.
const std::vector<ConvCase> kConvCases = {
    {2, 3, 7, 5, 4, 3, 3, 1, 1},   {2, 3, 7, 5, 4, 3, 3, 2, 1},    {2, 3, 6, 8, 4, 3, 3, 2, 0},
    {1, 2, 6, 9, 3, 3, 2, 2, 0},   {3, 2, 5, 5, 2, 1, 1, 1, 0},    {2, 3, 5, 4, 2, 1, 1, 2, 1},
    {2, 2, 8, 8, 3, 2, 2, 2, 0},   {1, 3, 4, 4, 2, 4, 4, 1, 0},    {2, 2, 3, 3, 2, 5, 5, 1, 1},
    {2, 3, 9, 7, 2, 3, 3, 3, 2},   {3, 4, 6, 6, 5, 3, 3, 1, 0},    {8, 4, 16, 12, 8, 3, 3, 1, 1},
    {8, 4, 17, 12, 8, 3, 3, 2, 1}, {8, 16, 12, 12, 8, 1, 1, 1, 0},
};

#define CAPTURE_CONV(k)                                                            \
  INFO("N=" << k.n << " C=" << k.c << " H=" << k.h << " W=" << k.w << " O=" << k.o \
            << " kernel=" << k.kh << "x" << k.kw << " stride=" << k.stride << " pad=" << k.pad)

}  // namespace

TEST_CASE("conv2d matches a direct loop reference", "[ops]") {
  for (const ConvCase& k : kConvCases) {
    CAPTURE_CONV(k);
    const auto x = random<double>(Shape{k.n, k.c, k.h, k.w}, 1);
    const auto w = random<double>(Shape{k.o, k.c, k.kh, k.kw}, 2);
    require_close(conv2d(x, w, Conv2dOptions{k.stride, k.pad}),
                  reference_conv2d(x, w, k.stride, k.pad), 1e-12);
    const auto xf = random<float>(Shape{k.n, k.c, k.h, k.w}, 3);
    const auto wf = random<float>(Shape{k.o, k.c, k.kh, k.kw}, 4);
    require_close(conv2d(xf, wf, Conv2dOptions{k.stride, k.pad}),
                  reference_conv2d(xf, wf, k.stride, k.pad), 1e-4);
  }
}

TEST_CASE("conv2d is the same on Tensors, Vars and Duals", "[ops]") {
  const auto x = random<double>(Shape{2, 3, 7, 6}, 5);
  const auto w = random<double>(Shape{4, 3, 3, 3}, 6);
  const Conv2dOptions opts{2, 1};
  const Tensor<double> want = reference_conv2d(x, w, 2, 1);
  require_close(conv2d(Var<double>(x, true), Var<double>(w, true), opts).value(), want, 1e-12);
  require_close(conv2d(Dual<Tensor<double>>(x), Dual<Tensor<double>>(w), opts).primal(), want,
                1e-12);
}

TEST_CASE("avg_pool2d matches a direct loop reference", "[ops]") {
  struct PoolCase {
    index_t n, c, h, w, k, s;
  };
  // Stride equal to, below (overlapping windows) and above (skipped pixels) the kernel, and
  // extents the stride does not divide (floor mode drops the remainder).
  const std::vector<PoolCase> cases = {{2, 3, 6, 8, 2, 2}, {2, 3, 7, 5, 2, 2}, {1, 2, 6, 7, 3, 1},
                                       {2, 2, 8, 9, 2, 3}, {3, 1, 5, 5, 5, 1}, {1, 4, 4, 6, 1, 1}};
  for (const PoolCase& k : cases) {
    INFO("N=" << k.n << " C=" << k.c << " H=" << k.h << " W=" << k.w << " kernel=" << k.k
              << " stride=" << k.s);
    const auto x = random<double>(Shape{k.n, k.c, k.h, k.w}, 7);
    require_close(avg_pool2d(x, k.k, k.s), reference_avg_pool2d(x, k.k, k.s), 1e-12);
    const auto xf = random<float>(Shape{k.n, k.c, k.h, k.w}, 8);
    require_close(avg_pool2d(xf, k.k, k.s), reference_avg_pool2d(xf, k.k, k.s), 1e-5);
  }
  SECTION("the stride defaults to the kernel size") {
    const auto x = random<double>(Shape{2, 3, 7, 6}, 9);
    require_close(avg_pool2d(x, 2), reference_avg_pool2d(x, 2, 2), 1e-12);
  }
}

TEST_CASE("conv2d, conv2d_input_grad and conv2d_weight_grad are adjoint", "[ops]") {
  for (const ConvCase& k : kConvCases) {
    CAPTURE_CONV(k);
    const Conv2dOptions opts{k.stride, k.pad};
    const auto x = random<double>(Shape{k.n, k.c, k.h, k.w}, 10);
    const auto w = random<double>(Shape{k.o, k.c, k.kh, k.kw}, 11);
    const Tensor<double> y = conv2d(x, w, opts);
    const auto g = random<double>(y.shape(), 12);
    const Tensor<double> gx = conv2d_input_grad(g, w, k.h, k.w, opts);
    const Tensor<double> gw = conv2d_weight_grad(x, g, k.kh, k.kw, opts);
    REQUIRE(gx.shape() == x.shape());
    REQUIRE(gw.shape() == w.shape());
    const double yg = dot(y, g);
    CHECK(dot(x, gx) == Approx(yg).epsilon(1e-10).margin(1e-10));
    CHECK(dot(w, gw) == Approx(yg).epsilon(1e-10).margin(1e-10));
  }
}

// The kernels run a batch in groups of samples side by side (sample-minor im2col, one GEMM
// per group) and a lone sample in its own layout; both must give every sample the result it
// gets alone. Batches past the largest group (a partial last group), wide images (always
// per sample), one channel, strides 1, 2 and 3, with and without padding, float and double.
template <Scalar T>
void require_grouping_invariant(const ConvCase& k, double tol) {
  const auto x = random<T>(Shape{k.n, k.c, k.h, k.w}, 30);
  const auto w = random<T>(Shape{k.o, k.c, k.kh, k.kw}, 31);
  const Tensor<T> y = kernels::conv2d(x, w, k.stride, k.pad);
  const auto gy = random<T>(y.shape(), 32);
  const Tensor<T> gx = kernels::conv2d_input_grad(gy, w, k.h, k.w, k.stride, k.pad);
  const Tensor<T> gw = kernels::conv2d_weight_grad(x, gy, k.kh, k.kw, k.stride, k.pad);
  require_close(y, reference_conv2d(x, w, k.stride, k.pad), tol);
  const index_t in_size = x.numel() / k.n, out_size = y.numel() / k.n;
  Tensor<T> gw_sum = Tensor<T>::zeros(w.shape());
  for (index_t n = 0; n < k.n; ++n) {
    INFO("sample " << n);
    Tensor<T> xn = Tensor<T>::empty(Shape{1, k.c, k.h, k.w});
    Tensor<T> gyn = Tensor<T>::empty(Shape{1, y.dim(1), y.dim(2), y.dim(3)});
    std::copy_n(x.data() + n * in_size, in_size, xn.data());
    std::copy_n(gy.data() + n * out_size, out_size, gyn.data());
    const Tensor<T> yn = kernels::conv2d(xn, w, k.stride, k.pad);
    const Tensor<T> gxn = kernels::conv2d_input_grad(gyn, w, k.h, k.w, k.stride, k.pad);
    for (index_t i = 0; i < out_size; ++i)
      REQUIRE(double(yn.data()[i]) ==
              Approx(double(y.data()[n * out_size + i])).margin(tol).epsilon(tol));
    for (index_t i = 0; i < in_size; ++i)
      REQUIRE(double(gxn.data()[i]) ==
              Approx(double(gx.data()[n * in_size + i])).margin(tol).epsilon(tol));
    gw_sum.array() += kernels::conv2d_weight_grad(xn, gyn, k.kh, k.kw, k.stride, k.pad).array();
  }
  require_close(gw, gw_sum, tol * double(k.n));
}

TEST_CASE("conv2d kernels give each sample of a batch what it gets alone", "[ops][conv]") {
  const std::vector<ConvCase> cases = {
      {19, 3, 5, 6, 4, 3, 3, 1, 1}, {19, 1, 9, 9, 2, 3, 3, 2, 1},  {17, 2, 7, 8, 3, 3, 3, 3, 2},
      {37, 4, 4, 4, 6, 3, 3, 2, 1}, {2, 2, 24, 24, 3, 3, 3, 1, 1}, {1, 1, 4, 4, 1, 3, 3, 2, 1},
      {5, 1, 6, 5, 2, 2, 3, 1, 0},  {21, 3, 6, 6, 2, 1, 1, 1, 0},  {18, 2, 5, 7, 3, 1, 1, 2, 1},
  };
  for (const ConvCase& k : cases) {
    CAPTURE_CONV(k);
    require_grouping_invariant<double>(k, 1e-12);
    require_grouping_invariant<float>(k, 1e-4);
  }
}

TEST_CASE("avg_pool2d and avg_pool2d_adjoint are adjoint", "[ops]") {
  const std::vector<std::array<index_t, 4>> cases = {
      {6, 8, 2, 2}, {7, 5, 2, 2}, {6, 7, 3, 1}, {8, 9, 2, 3}, {5, 5, 5, 1}};
  for (const auto& [h, w, k, s] : cases) {
    INFO("H=" << h << " W=" << w << " kernel=" << k << " stride=" << s);
    const auto x = random<double>(Shape{2, 3, h, w}, 13);
    const Tensor<double> y = avg_pool2d(x, k, s);
    const auto g = random<double>(y.shape(), 14);
    const Tensor<double> gx = avg_pool2d_adjoint(g, h, w, k, s);
    REQUIRE(gx.shape() == x.shape());
    CHECK(dot(x, gx) == Approx(dot(y, g)).epsilon(1e-10).margin(1e-10));
  }
}

// ---------------------------------------------------------------------------------------
// Derivatives. Small shapes: the harness differentiates numerically element by element.
// ---------------------------------------------------------------------------------------

TEST_CASE("conv2d derivatives", "[ops][reverse][forward][higher-order]") {
  const std::vector<Conv2dOptions> options = {{1, 0}, {1, 1}, {2, 1}, {2, 0}};
  for (const Conv2dOptions opts : options) {
    INFO("stride=" << opts.stride << " padding=" << opts.padding);
    const std::vector<Tensor<double>> in = {random<double>(Shape{2, 2, 5, 6}, 20),
                                            random<double>(Shape{3, 2, 3, 3}, 21)};
    require_gradcheck([opts](const auto& xs) { return conv2d(xs[0], xs[1], opts); }, in);
  }
}

TEST_CASE("conv2d_input_grad derivatives", "[ops][reverse][forward][higher-order]") {
  // H = 6 at stride 2 leaves the last input row unread, so the extent is not recoverable
  // from the output shape; the explicit extent must survive differentiation.
  struct Case {
    Conv2dOptions opts;
    index_t h, w;
  };
  for (const Case& c : {Case{{1, 1}, 5, 5}, Case{{2, 1}, 6, 5}, Case{{2, 0}, 5, 6}}) {
    INFO("stride=" << c.opts.stride << " padding=" << c.opts.padding << " H=" << c.h
                   << " W=" << c.w);
    const auto w = random<double>(Shape{3, 2, 3, 3}, 22);
    const Shape out = conv2d(Tensor<double>::zeros(Shape{2, 2, c.h, c.w}), w, c.opts).shape();
    const std::vector<Tensor<double>> in = {random<double>(out, 23), w};
    require_gradcheck(
        [c](const auto& xs) { return conv2d_input_grad(xs[0], xs[1], c.h, c.w, c.opts); }, in);
  }
}

TEST_CASE("conv2d_weight_grad derivatives", "[ops][reverse][forward][higher-order]") {
  for (const Conv2dOptions opts : {Conv2dOptions{1, 1}, Conv2dOptions{2, 1}}) {
    INFO("stride=" << opts.stride << " padding=" << opts.padding);
    const auto x = random<double>(Shape{2, 2, 5, 6}, 24);
    const Shape out = conv2d(x, Tensor<double>::zeros(Shape{3, 2, 3, 3}), opts).shape();
    const std::vector<Tensor<double>> in = {x, random<double>(out, 25)};
    require_gradcheck(
        [opts](const auto& xs) { return conv2d_weight_grad(xs[0], xs[1], 3, 3, opts); }, in);
  }
}

TEST_CASE("avg_pool2d derivatives", "[ops][reverse][forward][higher-order]") {
  const std::vector<Tensor<double>> in = {random<double>(Shape{2, 2, 5, 6}, 26)};
  SECTION("stride = kernel") {
    require_gradcheck([](const auto& xs) { return avg_pool2d(xs[0], 2); }, in);
  }
  SECTION("overlapping windows") {
    require_gradcheck([](const auto& xs) { return avg_pool2d(xs[0], 3, 1); }, in);
  }
}

TEST_CASE("avg_pool2d_adjoint derivatives", "[ops][reverse][forward][higher-order]") {
  const std::vector<Tensor<double>> in = {random<double>(Shape{2, 2, 2, 3}, 27)};
  SECTION("stride = kernel") {
    require_gradcheck([](const auto& xs) { return avg_pool2d_adjoint(xs[0], 5, 6, 2, 2); }, in);
  }
  SECTION("overlapping windows") {
    require_gradcheck([](const auto& xs) { return avg_pool2d_adjoint(xs[0], 3, 4, 2, 1); }, in);
  }
}

TEST_CASE("conv2d inside a nonlinear network", "[ops][reverse][forward][higher-order]") {
  // conv -> tanh -> conv -> pool: the second derivatives now mix both convolutions' rules
  // with a nonlinearity instead of vanishing by bilinearity.
  const std::vector<Tensor<double>> in = {random<double>(Shape{2, 2, 5, 5}, 28),
                                          random<double>(Shape{3, 2, 3, 3}, 29),
                                          random<double>(Shape{2, 3, 3, 3}, 30)};
  require_gradcheck(
      [](const auto& xs) {
        const auto h = tanh(conv2d(xs[0], xs[1], Conv2dOptions{1, 1}));
        return avg_pool2d(conv2d(h, xs[2], Conv2dOptions{2, 1}), 2, 1);
      },
      in);
}

// ---------------------------------------------------------------------------------------
// Errors name the op and the shapes involved.
// ---------------------------------------------------------------------------------------

TEST_CASE("conv2d rejects bad shapes and options", "[errors]") {
  const auto x = Tensor<double>::zeros(Shape{2, 3, 5, 5});
  const auto w = Tensor<double>::zeros(Shape{4, 3, 3, 3});
  SECTION("channel mismatch") {
    const auto w2 = Tensor<double>::zeros(Shape{4, 2, 3, 3});
    CHECK_THROWS_AS(conv2d(x, w2), ShapeError);
    CHECK_THROWS_WITH(conv2d(x, w2), Contains("conv2d") && Contains("[2, 3, 5, 5]") &&
                                         Contains("[4, 2, 3, 3]") && Contains("channels"));
  }
  SECTION("the mismatch is reported when recording on Vars too") {
    const Var<double> xv(x, true), wv(Tensor<double>::zeros(Shape{4, 2, 3, 3}), true);
    CHECK_THROWS_AS(conv2d(xv, wv), ShapeError);
  }
  SECTION("wrong rank") {
    CHECK_THROWS_AS(conv2d(x.reshape(Shape{6, 5, 5}), w), ShapeError);
    CHECK_THROWS_WITH(conv2d(x.reshape(Shape{6, 5, 5}), w),
                      Contains("conv2d") && Contains("[6, 5, 5]"));
    CHECK_THROWS_WITH(conv2d(x, w.reshape(Shape{4, 27})),
                      Contains("conv2d") && Contains("[4, 27]"));
  }
  SECTION("kernel larger than the padded input") {
    const auto big = Tensor<double>::zeros(Shape{4, 3, 8, 3});
    CHECK_THROWS_AS(conv2d(x, big, Conv2dOptions{1, 1}), ShapeError);
    CHECK_THROWS_WITH(conv2d(x, big, Conv2dOptions{1, 1}),
                      Contains("conv2d") && Contains("larger"));
    CHECK_NOTHROW(conv2d(x, big, Conv2dOptions{1, 2}));
  }
  SECTION("non-positive stride, negative padding") {
    CHECK_THROWS_WITH(conv2d(x, w, Conv2dOptions{0, 1}), Contains("conv2d") && Contains("stride"));
    CHECK_THROWS_WITH(conv2d(x, w, Conv2dOptions{1, -1}),
                      Contains("conv2d") && Contains("padding"));
  }
}

TEST_CASE("conv2d adjoints reject mismatched gradients", "[errors]") {
  const auto x = Tensor<double>::zeros(Shape{2, 3, 5, 5});
  const auto w = Tensor<double>::zeros(Shape{4, 3, 3, 3});
  const auto gy = Tensor<double>::zeros(Shape{2, 4, 3, 3});  // conv2d(x, w) with padding 0
  CHECK_NOTHROW(conv2d_input_grad(gy, w, 5, 5));
  CHECK_NOTHROW(conv2d_weight_grad(x, gy, 3, 3));
  SECTION("grad_output of the wrong spatial size") {
    CHECK_THROWS_AS(conv2d_input_grad(gy, w, 5, 5, Conv2dOptions{1, 1}), ShapeError);
    CHECK_THROWS_WITH(
        conv2d_input_grad(gy, w, 5, 5, Conv2dOptions{1, 1}),
        Contains("conv2d_input_grad") && Contains("[2, 4, 3, 3]") && Contains("[2, 4, 5, 5]"));
    CHECK_THROWS_WITH(
        conv2d_weight_grad(x, gy, 3, 3, Conv2dOptions{1, 1}),
        Contains("conv2d_weight_grad") && Contains("[2, 4, 3, 3]") && Contains("[2, 4, 5, 5]"));
  }
  SECTION("grad_output with the wrong number of channels or samples") {
    const auto g3 = Tensor<double>::zeros(Shape{2, 3, 3, 3});
    CHECK_THROWS_WITH(conv2d_input_grad(g3, w, 5, 5), Contains("conv2d_input_grad"));
    const auto g1 = Tensor<double>::zeros(Shape{1, 4, 3, 3});
    CHECK_THROWS_WITH(conv2d_weight_grad(x, g1, 3, 3), Contains("conv2d_weight_grad"));
  }
  SECTION("wrong rank") {
    CHECK_THROWS_AS(conv2d_input_grad(gy.reshape(Shape{8, 3, 3}), w, 5, 5), ShapeError);
    CHECK_THROWS_WITH(conv2d_weight_grad(x, gy.reshape(Shape{8, 9}), 3, 3),
                      Contains("conv2d_weight_grad") && Contains("[8, 9]"));
  }
  SECTION("non-positive extents") {
    CHECK_THROWS_WITH(conv2d_input_grad(gy, w, 0, 5), Contains("conv2d_input_grad"));
    CHECK_THROWS_WITH(conv2d_weight_grad(x, gy, 3, 0), Contains("conv2d_weight_grad"));
  }
}

TEST_CASE("avg_pool2d rejects bad shapes and options", "[errors]") {
  const auto x = Tensor<double>::zeros(Shape{2, 3, 4, 6});
  CHECK_THROWS_AS(avg_pool2d(x.reshape(Shape{6, 4, 6}), 2), ShapeError);
  CHECK_THROWS_WITH(avg_pool2d(x.reshape(Shape{6, 4, 6}), 2),
                    Contains("avg_pool2d") && Contains("[6, 4, 6]"));
  CHECK_THROWS_WITH(avg_pool2d(x, 5), Contains("avg_pool2d") && Contains("larger"));
  CHECK_THROWS_WITH(avg_pool2d(x, 0), Contains("avg_pool2d") && Contains("kernel"));
  CHECK_THROWS_WITH(avg_pool2d(x, 2, 0), Contains("avg_pool2d") && Contains("stride"));
  const auto g = Tensor<double>::zeros(Shape{2, 3, 2, 3});
  CHECK_NOTHROW(avg_pool2d_adjoint(g, 4, 6, 2, 2));
  CHECK_THROWS_AS(avg_pool2d_adjoint(g, 4, 4, 2, 2), ShapeError);
  CHECK_THROWS_WITH(avg_pool2d_adjoint(g, 4, 4, 2, 2), Contains("avg_pool2d_adjoint") &&
                                                           Contains("[2, 3, 2, 3]") &&
                                                           Contains("[2, 3, 2, 2]"));
}
