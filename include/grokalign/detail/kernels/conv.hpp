#pragma once
// 2-D convolution (cross-correlation, as in PyTorch) and average pooling on NCHW tensors.
// A convolution is one GEMM per sample against an im2col buffer:
//   y_n [O, OH*OW] = W [O, C*kh*kw] * col_n [C*kh*kw, OH*OW].
// Both adjoints use the same buffer layout (the input gradient scatters W^T gy_n back with
// col2im, the weight gradient multiplies gy_n by col_n^T), so the three kernels cannot
// disagree about which input pixel feeds which output pixel.
#include <algorithm>
#include <string>

#include "grokalign/detail/kernels/matmul.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace grokalign::kernels {

// Everything the conv kernels need to know, validated once per call.
struct Conv2dGeometry {
  index_t n, c, h, w;  // input [N, C, H, W]
  index_t o, kh, kw;   // weight [O, C, kh, kw]
  index_t oh, ow;      // output [N, O, OH, OW]
  index_t stride, pad;

  index_t patch() const noexcept { return c * kh * kw; }
  index_t pixels() const noexcept { return oh * ow; }
  Shape input_shape() const { return Shape{n, c, h, w}; }
  Shape weight_shape() const { return Shape{o, c, kh, kw}; }
  Shape output_shape() const { return Shape{n, o, oh, ow}; }
  // A 1x1 kernel at stride 1 without padding reads each sample as its own im2col matrix.
  bool identity_col() const noexcept { return kh == 1 && kw == 1 && stride == 1 && pad == 0; }
};

namespace conv_detail {

// Loops whose iterations are few but heavy (planes, im2col rows) would never reach
// parallel_for's iteration-count threshold, so the decision here is made on total work.
// Inside a sample-parallel region (below) they run serially.
template <class F>
void parallel_over(index_t count, [[maybe_unused]] index_t work_per_item, F&& f) {
#if defined(_OPENMP)
  if (count > 1 && count * work_per_item >= kParallelGrain && available_threads() > 1) {
#pragma omp parallel for schedule(static)
    for (index_t i = 0; i < count; ++i) f(i);
    return;
  }
#endif
  for (index_t i = 0; i < count; ++i) f(i);
}

// How many threads share a batch of convolutions. With at least one sample per thread,
// each thread takes whole samples with its own im2col buffer and a serial GEMM (Eigen does
// not nest inside a parallel region): one fork/join per call. Per-sample parallelism (a
// parallel im2col, then a parallel GEMM, per sample) costs two fork/joins per sample, and
// the per-sample GEMMs of a small-image CNN are too small to amortise them. Small batches
// keep that per-sample path, so single images still use every core.
inline int sample_threads([[maybe_unused]] index_t samples,
                          [[maybe_unused]] index_t work_per_sample) {
#if defined(_OPENMP)
  const int t = omp_get_max_threads();
  if (t > 1 && samples >= t && samples * work_per_sample >= kParallelGrain && !omp_in_parallel())
    return t;
#endif
  return 1;
}

// f(sample, slot) for every sample, where slot < threads indexes per-thread scratch.
template <class F>
void for_each_sample(index_t samples, [[maybe_unused]] int threads, F&& f) {
#if defined(_OPENMP)
  if (threads > 1) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (index_t n = 0; n < samples; ++n) f(n, omp_get_thread_num());
    return;
  }
#endif
  for (index_t n = 0; n < samples; ++n) f(n, 0);
}

inline std::string conv_context(const Shape& x, const Shape& w, index_t stride, index_t pad) {
  return " (input " + x.to_string() + ", weight " + w.to_string() + ", stride " +
         std::to_string(stride) + ", padding " + std::to_string(pad) + ")";
}

inline void require_nchw(const char* op, const char* what, const Shape& s) {
  if (s.rank() != 4)
    detail::throw_shape(
        op, std::string(what) + " must have 4 axes [N, C, H, W], got shape " + s.to_string());
}

inline void require_positive(const char* op, const char* what, index_t v) {
  if (v <= 0)
    detail::throw_shape(op, std::string(what) + " must be positive, got " + std::to_string(v));
}

// Validates an input/weight pair and derives the output extents.
inline Conv2dGeometry conv_geometry(const char* op, const Shape& x, const Shape& w, index_t stride,
                                    index_t pad) {
  require_nchw(op, "input", x);
  if (w.rank() != 4)
    detail::throw_shape(op, "weight must have 4 axes [O, C, kh, kw], got shape " + w.to_string());
  require_positive(op, "stride", stride);
  if (pad < 0) detail::throw_shape(op, "padding must be non-negative, got " + std::to_string(pad));
  if (x[1] != w[1])
    detail::throw_shape(op, "input has " + std::to_string(x[1]) +
                                " channels but the weight expects " + std::to_string(w[1]) +
                                conv_context(x, w, stride, pad));
  if (w[2] <= 0 || w[3] <= 0)
    detail::throw_shape(op, "kernel extents must be positive" + conv_context(x, w, stride, pad));
  const index_t ph = x[2] + 2 * pad, pw = x[3] + 2 * pad;
  if (w[2] > ph || w[3] > pw)
    detail::throw_shape(op, "kernel " + std::to_string(w[2]) + "x" + std::to_string(w[3]) +
                                " is larger than the padded input " + std::to_string(ph) + "x" +
                                std::to_string(pw) + conv_context(x, w, stride, pad));
  Conv2dGeometry g{};
  g.n = x[0];
  g.c = x[1];
  g.h = x[2];
  g.w = x[3];
  g.o = w[0];
  g.kh = w[2];
  g.kw = w[3];
  g.oh = (ph - g.kh) / stride + 1;
  g.ow = (pw - g.kw) / stride + 1;
  g.stride = stride;
  g.pad = pad;
  return g;
}

inline void require_output_shape(const char* op, const Shape& gy, const Conv2dGeometry& g) {
  if (!(gy == g.output_shape()))
    detail::throw_shape(op, "grad_output of shape " + gy.to_string() +
                                " does not match the convolution output shape " +
                                g.output_shape().to_string() +
                                conv_context(g.input_shape(), g.weight_shape(), g.stride, g.pad));
}

// Output columns [lo, hi) whose input column ow*stride - pad + j lies inside [0, width);
// the others read padding.
inline void valid_columns(const Conv2dGeometry& g, index_t j, index_t& lo, index_t& hi) {
  const index_t first = g.pad - j;           // ow*stride >= first
  const index_t last = g.w - 1 + g.pad - j;  // ow*stride <= last
  lo = first <= 0 ? 0 : (first + g.stride - 1) / g.stride;
  hi = last < 0 ? 0 : std::min(g.ow, last / g.stride + 1);
  lo = std::min(lo, g.ow);
  hi = std::max(hi, lo);
}

// col [C*kh*kw, OH*OW] from one sample x [C, H, W].
template <class T>
void im2col(const T* x, const Conv2dGeometry& g, T* col) {
  const index_t pixels = g.pixels();
  parallel_over(g.patch(), pixels, [&](index_t r) {
    const index_t j = r % g.kw, i = (r / g.kw) % g.kh, c = r / (g.kw * g.kh);
    const T* plane = x + c * g.h * g.w;
    T* dst = col + r * pixels;
    index_t lo, hi;
    valid_columns(g, j, lo, hi);
    for (index_t oh = 0; oh < g.oh; ++oh, dst += g.ow) {
      const index_t ih = oh * g.stride - g.pad + i;
      if (ih < 0 || ih >= g.h) {
        std::fill_n(dst, g.ow, T(0));
        continue;
      }
      const T* src = plane + ih * g.w;
      const index_t base = j - g.pad;
      std::fill(dst, dst + lo, T(0));
      if (g.stride == 1) {
        std::copy(src + (base + lo), src + (base + hi), dst + lo);
      } else {
        for (index_t ow = lo; ow < hi; ++ow) dst[ow] = src[base + ow * g.stride];
      }
      std::fill(dst + hi, dst + g.ow, T(0));
    }
  });
}

// x [C, H, W] += the adjoint of im2col applied to col. Rows of one channel write the same
// plane, so the work is split by channel.
template <class T>
void col2im_add(const T* col, const Conv2dGeometry& g, T* x) {
  const index_t pixels = g.pixels();
  parallel_over(g.c, g.kh * g.kw * pixels, [&](index_t c) {
    T* plane = x + c * g.h * g.w;
    for (index_t i = 0; i < g.kh; ++i) {
      for (index_t j = 0; j < g.kw; ++j) {
        const T* src = col + ((c * g.kh + i) * g.kw + j) * pixels;
        index_t lo, hi;
        valid_columns(g, j, lo, hi);
        const index_t base = j - g.pad;
        for (index_t oh = 0; oh < g.oh; ++oh, src += g.ow) {
          const index_t ih = oh * g.stride - g.pad + i;
          if (ih < 0 || ih >= g.h) continue;
          T* dst = plane + ih * g.w;
          for (index_t ow = lo; ow < hi; ++ow) dst[base + ow * g.stride] += src[ow];
        }
      }
    }
  });
}

struct Pool2dGeometry {
  index_t n, c, h, w, oh, ow, kernel, stride;
  Shape input_shape() const { return Shape{n, c, h, w}; }
  Shape output_shape() const { return Shape{n, c, oh, ow}; }
};

inline Pool2dGeometry pool_geometry(const char* op, const Shape& x, index_t kernel,
                                    index_t stride) {
  require_nchw(op, "input", x);
  require_positive(op, "kernel size", kernel);
  require_positive(op, "stride", stride);
  if (kernel > x[2] || kernel > x[3])
    detail::throw_shape(op, "kernel " + std::to_string(kernel) + "x" + std::to_string(kernel) +
                                " is larger than the input " + x.to_string());
  Pool2dGeometry g{};
  g.n = x[0];
  g.c = x[1];
  g.h = x[2];
  g.w = x[3];
  g.oh = (g.h - kernel) / stride + 1;
  g.ow = (g.w - kernel) / stride + 1;
  g.kernel = kernel;
  g.stride = stride;
  return g;
}

}  // namespace conv_detail

// y = conv2d(x, w): x [N, C, H, W], w [O, C, kh, kw] -> [N, O, OH, OW] with symmetric zero
// padding and OH = (H + 2 padding - kh) / stride + 1.
template <class T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& w, index_t stride, index_t padding) {
  const auto g = conv_detail::conv_geometry("conv2d", x.shape(), w.shape(), stride, padding);
  Tensor<T> y = Tensor<T>::empty(g.output_shape());
  const index_t k = g.patch(), p = g.pixels(), in_size = g.c * g.h * g.w;
  using M = typename Tensor<T>::MatrixMap;
  using CM = typename Tensor<T>::ConstMatrixMap;
  const CM wm(w.data(), g.o, k);
  const int threads = conv_detail::sample_threads(g.n, g.o * k * p);
  Tensor<T> col = g.identity_col() ? Tensor<T>() : Tensor<T>::empty(Shape{threads, k, p});
  conv_detail::for_each_sample(g.n, threads, [&](index_t n, int slot) {
    const T* xn = x.data() + n * in_size;
    T* cn = col.defined() ? col.data() + slot * k * p : nullptr;
    if (cn) conv_detail::im2col(xn, g, cn);
    gemm(M(y.data() + n * g.o * p, g.o, p), wm, false, CM(cn ? cn : xn, k, p), false);
  });
  return y;
}

// The adjoint of conv2d in x: gx = conv2d_input_grad(gy, w) satisfies
// <conv2d(x, w), gy> = <x, gx> for every x of shape [N, C, height, width]. The input extents
// are explicit because a strided convolution maps several input sizes to one output size.
template <class T>
Tensor<T> conv2d_input_grad(const Tensor<T>& gy, const Tensor<T>& w, index_t height, index_t width,
                            index_t stride, index_t padding) {
  constexpr const char* op = "conv2d_input_grad";
  conv_detail::require_nchw(op, "grad_output", gy.shape());
  if (w.rank() != 4)
    detail::throw_shape(
        op, "weight must have 4 axes [O, C, kh, kw], got shape " + w.shape().to_string());
  conv_detail::require_positive(op, "input height", height);
  conv_detail::require_positive(op, "input width", width);
  const auto g = conv_detail::conv_geometry(op, Shape{gy.shape()[0], w.shape()[1], height, width},
                                            w.shape(), stride, padding);
  conv_detail::require_output_shape(op, gy.shape(), g);
  Tensor<T> gx = Tensor<T>::zeros(g.input_shape());
  const index_t k = g.patch(), p = g.pixels(), in_size = g.c * g.h * g.w;
  using M = typename Tensor<T>::MatrixMap;
  using CM = typename Tensor<T>::ConstMatrixMap;
  const CM wm(w.data(), g.o, k);
  const int threads = conv_detail::sample_threads(g.n, g.o * k * p);
  Tensor<T> col = g.identity_col() ? Tensor<T>() : Tensor<T>::empty(Shape{threads, k, p});
  conv_detail::for_each_sample(g.n, threads, [&](index_t n, int slot) {
    const CM gyn(gy.data() + n * g.o * p, g.o, p);
    T* gxn = gx.data() + n * in_size;
    if (!col.defined()) {
      gemm(M(gxn, k, p), wm, true, gyn, false);
      return;
    }
    T* cn = col.data() + slot * k * p;
    gemm(M(cn, k, p), wm, true, gyn, false);
    conv_detail::col2im_add(cn, g, gxn);
  });
  return gx;
}

// The adjoint of conv2d in w: gw = conv2d_weight_grad(x, gy) satisfies
// <conv2d(x, w), gy> = <w, gw> for every w of shape [O, C, kh, kw].
template <class T>
Tensor<T> conv2d_weight_grad(const Tensor<T>& x, const Tensor<T>& gy, index_t kh, index_t kw,
                             index_t stride, index_t padding) {
  constexpr const char* op = "conv2d_weight_grad";
  conv_detail::require_nchw(op, "input", x.shape());
  conv_detail::require_nchw(op, "grad_output", gy.shape());
  conv_detail::require_positive(op, "kernel height", kh);
  conv_detail::require_positive(op, "kernel width", kw);
  const auto g = conv_detail::conv_geometry(
      op, x.shape(), Shape{gy.shape()[1], x.shape()[1], kh, kw}, stride, padding);
  conv_detail::require_output_shape(op, gy.shape(), g);
  const index_t k = g.patch(), p = g.pixels(), in_size = g.c * g.h * g.w;
  using M = typename Tensor<T>::MatrixMap;
  using CM = typename Tensor<T>::ConstMatrixMap;
  const int threads = conv_detail::sample_threads(g.n, g.o * k * p);
  Tensor<T> col = g.identity_col() ? Tensor<T>() : Tensor<T>::empty(Shape{threads, k, p});
  // One partial sum per thread, added up at the end, so threads never write the same w.
  Tensor<T> partial = Tensor<T>::zeros(Shape{threads, g.o, k});
  conv_detail::for_each_sample(g.n, threads, [&](index_t n, int slot) {
    const T* xn = x.data() + n * in_size;
    T* cn = col.defined() ? col.data() + slot * k * p : nullptr;
    if (cn) conv_detail::im2col(xn, g, cn);
    gemm(M(partial.data() + slot * g.o * k, g.o, k), CM(gy.data() + n * g.o * p, g.o, p), false,
         CM(cn ? cn : xn, k, p), true, /*accumulate=*/true);
  });
  if (threads == 1) return partial.reshape(g.weight_shape());
  Tensor<T> gw = Tensor<T>::empty(g.weight_shape());
  gw.array() = partial.matrix(threads, g.o * k).colwise().sum().transpose().array();
  return gw;
}

// Mean over each kernel x kernel window, no padding, floor mode (torch.nn.AvgPool2d).
template <class T>
Tensor<T> avg_pool2d(const Tensor<T>& x, index_t kernel, index_t stride) {
  const auto g = conv_detail::pool_geometry("avg_pool2d", x.shape(), kernel, stride);
  Tensor<T> y = Tensor<T>::empty(g.output_shape());
  const T scale = T(1) / static_cast<T>(kernel * kernel);
  const index_t in_plane = g.h * g.w, out_plane = g.oh * g.ow;
  conv_detail::parallel_over(g.n * g.c, out_plane * kernel * kernel, [&](index_t pl) {
    const T* src = x.data() + pl * in_plane;
    T* dst = y.data() + pl * out_plane;
    for (index_t oh = 0; oh < g.oh; ++oh) {
      for (index_t ow = 0; ow < g.ow; ++ow) {
        const T* win = src + oh * stride * g.w + ow * stride;
        T s = T(0);
        for (index_t i = 0; i < kernel; ++i)
          for (index_t j = 0; j < kernel; ++j) s += win[i * g.w + j];
        dst[oh * g.ow + ow] = s * scale;
      }
    }
  });
  return y;
}

// The adjoint of avg_pool2d: each window element receives its output's gradient / kernel^2
// (summed where windows overlap). Input extents are explicit for the same reason as in
// conv2d_input_grad.
template <class T>
Tensor<T> avg_pool2d_adjoint(const Tensor<T>& gy, index_t height, index_t width, index_t kernel,
                             index_t stride) {
  constexpr const char* op = "avg_pool2d_adjoint";
  conv_detail::require_nchw(op, "grad_output", gy.shape());
  conv_detail::require_positive(op, "input height", height);
  conv_detail::require_positive(op, "input width", width);
  const auto g = conv_detail::pool_geometry(op, Shape{gy.shape()[0], gy.shape()[1], height, width},
                                            kernel, stride);
  if (!(gy.shape() == g.output_shape()))
    detail::throw_shape(op, "grad_output of shape " + gy.shape().to_string() +
                                " does not match the pooling output shape " +
                                g.output_shape().to_string() + " (input " +
                                g.input_shape().to_string() + ", kernel " + std::to_string(kernel) +
                                ", stride " + std::to_string(stride) + ")");
  Tensor<T> gx = Tensor<T>::zeros(g.input_shape());
  const T scale = T(1) / static_cast<T>(kernel * kernel);
  const index_t in_plane = g.h * g.w, out_plane = g.oh * g.ow;
  conv_detail::parallel_over(g.n * g.c, out_plane * kernel * kernel, [&](index_t pl) {
    const T* src = gy.data() + pl * out_plane;
    T* dst = gx.data() + pl * in_plane;
    for (index_t oh = 0; oh < g.oh; ++oh) {
      for (index_t ow = 0; ow < g.ow; ++ow) {
        T* win = dst + oh * stride * g.w + ow * stride;
        const T v = src[oh * g.ow + ow] * scale;
        for (index_t i = 0; i < kernel; ++i)
          for (index_t j = 0; j < kernel; ++j) win[i * g.w + j] += v;
      }
    }
  });
  return gx;
}

}  // namespace grokalign::kernels
