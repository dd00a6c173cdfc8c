#pragma once
// 2-D convolution (cross-correlation, as in PyTorch) and average pooling on NCHW tensors.
// A convolution is one GEMM per group of samples against an im2col buffer:
//   y_g [O, OH*OW*count] = W [O, C*kh*kw] * col_g [C*kh*kw, OH*OW*count]
// (a group is one sample, or several side by side: see group_size). Both adjoints use the
// same buffer layout (the input gradient scatters W^T gy_g back with col2im, the weight
// gradient multiplies gy_g by col_g^T), so the three kernels cannot disagree about which
// input pixel feeds which output pixel.
#include <algorithm>
#include <cstddef>
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

// Samples [begin, begin + count) of one group, and the slot < threads of the thread that
// runs it (for per-thread scratch).
struct SampleGroup {
  index_t begin, count;
  int slot;
};

// A group of samples is processed in one GEMM, with its im2col matrix laid out pixel-major
// and sample-minor: column (pixel * count + sample). Every im2col row then copies runs of
// `count` adjacent values (whole output rows at stride 1) instead of a few pixels at a
// time, and col2im adds such runs; the input and output of the group are transposed to
// that layout ([C*H*W, count] and back) once. A group of one sample is the plain
// per-sample layout and needs no transposes.
//
// Group size: enough samples that the runs are long and the GEMM is wide (a late layer has
// only a few pixels per sample, and so narrow a GEMM runs Eigen's edge kernels), but no
// more than keep the group's im2col matrix near kGroupBytes, so it stays in cache between
// im2col and the GEMM.
inline constexpr std::size_t kGroupBytes = std::size_t{1} << 21;
inline constexpr index_t kMaxGroup = 16;
// From this many output pixels on, a sample alone makes a wide enough GEMM with long enough
// im2col runs, and its own layout saves the transposes.
inline constexpr index_t kWidePixels = 512;

template <class T>
index_t group_size(const Conv2dGeometry& g, index_t samples_per_thread) {
  if (g.identity_col()) return 1;  // the sample is its own im2col matrix: no copy to save
  if (g.pixels() >= kWidePixels) return 1;
  const index_t b =
      static_cast<index_t>(kGroupBytes / sizeof(T)) / std::max<index_t>(1, g.patch() * g.pixels());
  return std::clamp<index_t>(std::min(b, kMaxGroup), 1, std::max<index_t>(1, samples_per_thread));
}

// dst[e * count + b] = src[b * size + e]: `count` rows of `size` to sample-minor order.
template <class T>
void to_sample_minor(const T* src, index_t count, index_t size, T* dst) {
  constexpr index_t kBlock = 64;
  for (index_t e0 = 0; e0 < size; e0 += kBlock) {
    const index_t e1 = std::min(size, e0 + kBlock);
    for (index_t b = 0; b < count; ++b) {
      const T* __restrict s = src + b * size;
      T* __restrict d = dst + b;
      for (index_t e = e0; e < e1; ++e) d[e * count] = s[e];
    }
  }
}

// The inverse: dst[b * size + e] = src[e * count + b].
template <class T>
void from_sample_minor(const T* src, index_t count, index_t size, T* dst) {
  constexpr index_t kBlock = 64;
  for (index_t e0 = 0; e0 < size; e0 += kBlock) {
    const index_t e1 = std::min(size, e0 + kBlock);
    for (index_t b = 0; b < count; ++b) {
      const T* __restrict s = src + b;
      T* __restrict d = dst + b * size;
      for (index_t e = e0; e < e1; ++e) d[e] = s[e * count];
    }
  }
}

// f(SampleGroup) for the samples in groups of at most `group`. With threads > 1 each thread
// takes a contiguous range of samples (one fork/join per call) and cuts it into groups.
template <class F>
void for_each_group(index_t samples, [[maybe_unused]] int threads, index_t group, F&& f) {
  auto run = [&](index_t lo, index_t hi, int slot) {
    for (index_t n = lo; n < hi; n += group) f(SampleGroup{n, std::min(group, hi - n), slot});
  };
#if defined(_OPENMP)
  if (threads > 1) {
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num(), nt = omp_get_num_threads();
      run(samples * t / nt, samples * (t + 1) / nt, t);
    }
    return;
  }
#endif
  run(0, samples, 0);
}

// Samples per thread when `threads` share `samples`.
inline index_t per_thread(index_t samples, int threads) {
  return (samples + threads - 1) / threads;
}

// How the three kernels cut a batch: the threads, the samples per group, and one scratch slot
// per thread holding the group's im2col matrix (or column gradient) [k, p * group] followed,
// when a group has several samples, by its input and output in sample-minor order.
template <class T>
struct GroupPlan {
  index_t k, p, in_size, out_size;  // patch length, output pixels, per-sample sizes
  int threads;
  index_t group, col_size, slot_size;
  Tensor<T> scratch;

  explicit GroupPlan(const Conv2dGeometry& g)
      : k(g.patch()),
        p(g.pixels()),
        in_size(g.c * g.h * g.w),
        out_size(g.o * g.pixels()),
        threads(sample_threads(g.n, g.o * k * p)),
        group(group_size<T>(g, per_thread(g.n, threads))),
        col_size(g.identity_col() ? 0 : k * p * group),
        slot_size(col_size + (group > 1 ? (in_size + out_size) * group : 0)),
        scratch(slot_size ? Tensor<T>::empty(Shape{threads, slot_size}) : Tensor<T>()) {}

  // The group's im2col matrix (null when the kernel needs none and the group is one sample).
  T* col(const SampleGroup& sg) {
    return scratch.defined() ? scratch.data() + sg.slot * slot_size : nullptr;
  }
  // Where the group's sample-minor copies start: after its im2col matrix.
  T* sample_minor(const SampleGroup& sg) { return col(sg) + col_size; }
};

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

// col [C*kh*kw, OH*OW*count] from a group x [C, H, W, count] (sample-minor; count = 1 is
// one sample in its own layout). S is the stride when it is a compile-time constant (1 and
// 2, the common ones), else 0.
template <int S, class T>
void im2col_impl(const T* x, const Conv2dGeometry& g, index_t count, T* col) {
  const index_t s = S ? S : g.stride;
  const index_t row = g.ow * count;
  parallel_over(g.patch(), g.pixels() * count, [&](index_t r) {
    const index_t j = r % g.kw, i = (r / g.kw) % g.kh, c = r / (g.kw * g.kh);
    const T* plane = x + c * g.h * g.w * count;
    index_t lo, hi;
    valid_columns(g, j, lo, hi);
    const index_t base = j - g.pad;
    T* __restrict dst = col + r * g.pixels() * count;
    for (index_t oh = 0; oh < g.oh; ++oh, dst += row) {
      const index_t ih = oh * s - g.pad + i;
      if (ih < 0 || ih >= g.h) {
        std::fill_n(dst, row, T(0));
        continue;
      }
      const T* __restrict src = plane + (ih * g.w + base) * count;
      std::fill_n(dst, lo * count, T(0));
      if (S == 1) {
        std::copy_n(src + lo * count, (hi - lo) * count, dst + lo * count);
      } else if (count == 1) {
        for (index_t q = lo; q < hi; ++q) dst[q] = src[q * s];
      } else {
        for (index_t q = lo; q < hi; ++q)
          for (index_t b = 0; b < count; ++b) dst[q * count + b] = src[q * s * count + b];
      }
      std::fill(dst + hi * count, dst + row, T(0));
    }
  });
}

template <class T>
void im2col(const T* x, const Conv2dGeometry& g, index_t count, T* col) {
  if (g.stride == 1)
    im2col_impl<1>(x, g, count, col);
  else if (g.stride == 2)
    im2col_impl<2>(x, g, count, col);
  else
    im2col_impl<0>(x, g, count, col);
}

// x [C, H, W, count] = the adjoint of im2col applied to col, overwriting x. Each input row
// is summed in place from every (i, j) tap that reads it, in the order i, then j, that a
// scatter over the rows of col would add them (so the sums do not depend on the layout);
// the row stays in L1 while its taps are added. Split by channel.
template <int S, class T>
void col2im_impl(const T* col, const Conv2dGeometry& g, index_t count, T* x) {
  const index_t s = S ? S : g.stride;
  const index_t ld = g.pixels() * count;
  parallel_over(g.c, g.kh * g.kw * ld, [&](index_t c) {
    T* plane = x + c * g.h * g.w * count;
    const T* col_c = col + c * g.kh * g.kw * ld;
    for (index_t ih = 0; ih < g.h; ++ih) {
      T* __restrict out = plane + ih * g.w * count;
      std::fill_n(out, g.w * count, T(0));
      for (index_t i = 0; i < g.kh; ++i) {
        const index_t num = ih + g.pad - i;  // oh * stride
        if (num < 0) break;
        if (num % s != 0) continue;
        const index_t oh = num / s;
        if (oh >= g.oh) continue;
        for (index_t j = 0; j < g.kw; ++j) {
          const T* __restrict src = col_c + (i * g.kw + j) * ld + oh * g.ow * count;
          index_t lo, hi;
          valid_columns(g, j, lo, hi);
          const index_t base = j - g.pad;
          if (S == 1) {
            T* __restrict o = out + (base + lo) * count;
            const T* __restrict v = src + lo * count;
            for (index_t t = 0; t < (hi - lo) * count; ++t) o[t] += v[t];
          } else if (count == 1) {
            for (index_t q = lo; q < hi; ++q) out[base + q * s] += src[q];
          } else {
            for (index_t q = lo; q < hi; ++q) {
              T* __restrict o = out + (base + q * s) * count;
              const T* __restrict v = src + q * count;
              for (index_t b = 0; b < count; ++b) o[b] += v[b];
            }
          }
        }
      }
    }
  });
}

template <class T>
void col2im(const T* col, const Conv2dGeometry& g, index_t count, T* x) {
  if (g.stride == 1)
    col2im_impl<1>(col, g, count, x);
  else if (g.stride == 2)
    col2im_impl<2>(col, g, count, x);
  else
    col2im_impl<0>(col, g, count, x);
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
  conv_detail::GroupPlan<T> plan(g);
  const index_t k = plan.k, p = plan.p, in_size = plan.in_size, out_size = plan.out_size;
  using M = typename Tensor<T>::MatrixMap;
  using CM = typename Tensor<T>::ConstMatrixMap;
  const CM wm(w.data(), g.o, k);
  conv_detail::for_each_group(g.n, plan.threads, plan.group, [&](conv_detail::SampleGroup sg) {
    const index_t cnt = sg.count;
    T* col = plan.col(sg);
    const T* xg = x.data() + sg.begin * in_size;
    T* yg = y.data() + sg.begin * out_size;
    if (cnt > 1) {
      T* xt = plan.sample_minor(sg);
      conv_detail::to_sample_minor(xg, cnt, in_size, xt);
      xg = xt;
      yg = xt + in_size * plan.group;
    }
    if (!g.identity_col()) {
      conv_detail::im2col(xg, g, cnt, col);
      xg = col;
    }
    gemm(M(yg, g.o, p * cnt), wm, false, CM(xg, k, p * cnt), false);
    if (cnt > 1) conv_detail::from_sample_minor(yg, cnt, out_size, y.data() + sg.begin * out_size);
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
  // col2im (or the 1x1 GEMM) writes every element of each sample's gradient: no zero fill.
  Tensor<T> gx = Tensor<T>::empty(g.input_shape());
  conv_detail::GroupPlan<T> plan(g);
  const index_t k = plan.k, p = plan.p, in_size = plan.in_size, out_size = plan.out_size;
  using M = typename Tensor<T>::MatrixMap;
  using CM = typename Tensor<T>::ConstMatrixMap;
  const CM wm(w.data(), g.o, k);
  conv_detail::for_each_group(g.n, plan.threads, plan.group, [&](conv_detail::SampleGroup sg) {
    const index_t cnt = sg.count;
    T* col = plan.col(sg);  // here the column gradient
    const T* gyg = gy.data() + sg.begin * out_size;
    T* gxg = gx.data() + sg.begin * in_size;
    if (cnt > 1) {
      T* gyt = plan.sample_minor(sg);
      conv_detail::to_sample_minor(gyg, cnt, out_size, gyt);
      gyg = gyt;
      gxg = gyt + out_size * plan.group;
    }
    if (g.identity_col()) {
      gemm(M(gxg, k, p * cnt), wm, true, CM(gyg, g.o, p * cnt), false);
    } else {
      gemm(M(col, k, p * cnt), wm, true, CM(gyg, g.o, p * cnt), false);
      conv_detail::col2im(col, g, cnt, gxg);
    }
    if (cnt > 1) conv_detail::from_sample_minor(gxg, cnt, in_size, gx.data() + sg.begin * in_size);
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
  conv_detail::GroupPlan<T> plan(g);
  const index_t k = plan.k, p = plan.p, in_size = plan.in_size, out_size = plan.out_size;
  const int threads = plan.threads;
  using M = typename Tensor<T>::MatrixMap;
  using CM = typename Tensor<T>::ConstMatrixMap;
  // One partial sum per thread, added up at the end, so threads never write the same w.
  Tensor<T> partial = Tensor<T>::zeros(Shape{threads, g.o, k});
  conv_detail::for_each_group(g.n, threads, plan.group, [&](conv_detail::SampleGroup sg) {
    const index_t cnt = sg.count;
    T* col = plan.col(sg);
    const T* xg = x.data() + sg.begin * in_size;
    const T* gyg = gy.data() + sg.begin * out_size;
    if (cnt > 1) {
      T* xt = plan.sample_minor(sg);
      T* gyt = xt + in_size * plan.group;
      conv_detail::to_sample_minor(xg, cnt, in_size, xt);
      conv_detail::to_sample_minor(gyg, cnt, out_size, gyt);
      xg = xt;
      gyg = gyt;
    }
    if (!g.identity_col()) {
      conv_detail::im2col(xg, g, cnt, col);
      xg = col;
    }
    gemm(M(partial.data() + sg.slot * g.o * k, g.o, k), CM(gyg, g.o, p * cnt), false,
         CM(xg, k, p * cnt), true, /*accumulate=*/true);
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
