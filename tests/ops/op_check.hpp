#pragma once
// Shared helpers for the per-op tests in tests/ops:
//   - require_gradcheck / require_value: run the testing harness and assert on its report;
//   - small deterministic inputs (normal, positive, away from given points);
//   - reference implementations written with plain loops over multi-indices, independent of
//     the library's kernels, to compute expected values.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include <grokalign/grokalign.hpp>
#include <grokalign/testing.hpp>

// Every op test that runs the full harness (values in all modes, VJP, JVP, graph JVP, adjoint
// and the three second-order compositions) carries these tags plus its family tag.
#define OP_TAGS(family) "[ops][reverse][forward][higher-order]" family

namespace op_check {

// The tests are in double throughout; the library's ops are found by argument-dependent
// lookup on these types.
using grokalign::Generator;
using grokalign::index_t;
using grokalign::Indices;
using grokalign::Shape;
using grokalign::testing::GradcheckOptions;
using Tensor = grokalign::Tensor<double>;
using Var = grokalign::Var<double>;
using DualT = grokalign::Dual<Tensor>;

// Runs the full harness on f at `inputs` (first and, unless disabled, second order).
template <class F>
void require_gradcheck(F f, std::vector<Tensor> inputs, GradcheckOptions options = {}) {
  const auto report = grokalign::testing::gradcheck(f, inputs, options);
  INFO(report.message);
  CHECK(report.ok);
  CHECK(report.checks > 0);
}

// Checks f's value on plain tensors against `expected`.
template <class F>
void require_value(F f, std::vector<Tensor> inputs, const Tensor& expected, double rtol = 1e-12,
                   double atol = 1e-12) {
  const auto report = grokalign::testing::check_value(f, inputs, expected, rtol, atol);
  INFO(report.message);
  CHECK(report.ok);
  CHECK(report.checks > 0);
}

// --- inputs -------------------------------------------------------------------------------

inline Tensor tensor(const Shape& shape, std::initializer_list<double> values) {
  return Tensor::from(shape, values);
}
inline Tensor normal(const Shape& shape, Generator& gen, double stddev = 1.0) {
  return grokalign::randn<double>(shape, gen, 0.0, stddev);
}
inline Tensor uniform(const Shape& shape, Generator& gen, double lo, double hi) {
  return grokalign::rand_uniform<double>(shape, gen, lo, hi);
}
// Magnitudes in [lo, hi] with random signs: keeps every entry at least `lo` away from 0.
inline Tensor signed_uniform(const Shape& shape, Generator& gen, double lo, double hi) {
  Tensor t = uniform(shape, gen, lo, hi);
  for (double& v : t)
    if (gen.bernoulli(0.5)) v = -v;
  return t;
}
// Normal draws (scaled by `scale`) resampled until each is at least `margin` away from every
// point in `points` (for ops with kinks: relu, abs, clamp).
inline Tensor away_from(const Shape& shape, Generator& gen, std::initializer_list<double> points,
                        double margin = 0.1, double scale = 1.0) {
  Tensor t = Tensor::empty(shape);
  for (double& v : t) {
    bool ok = false;
    while (!ok) {
      v = scale * gen.normal();
      ok = true;
      for (double p : points) ok = ok && std::abs(v - p) >= margin;
    }
  }
  return t;
}

// --- reference computations (plain loops, no library kernels) ----------------------------

inline std::vector<index_t> unravel(index_t flat, const Shape& s) {
  std::vector<index_t> idx(s.rank());
  for (int d = s.rank() - 1; d >= 0; --d) {
    idx[d] = flat % s[d];
    flat /= s[d];
  }
  return idx;
}
inline index_t ravel(const std::vector<index_t>& idx, const Shape& s) {
  index_t flat = 0;
  for (int d = 0; d < s.rank(); ++d) flat = flat * s[d] + idx[d];
  return flat;
}
// Position in a tensor of shape `s` that broadcasts (right-aligned) to the multi-index `idx`.
inline index_t broadcast_source(const std::vector<index_t>& idx, const Shape& s) {
  const int off = static_cast<int>(idx.size()) - s.rank();
  index_t flat = 0;
  for (int d = 0; d < s.rank(); ++d) flat = flat * s[d] + (s[d] == 1 ? 0 : idx[d + off]);
  return flat;
}
inline Shape broadcast_shape_ref(const Shape& a, const Shape& b) {
  const int r = std::max(a.rank(), b.rank());
  Shape out;
  for (int i = 0; i < r; ++i) {
    const int ia = i - (r - a.rank()), ib = i - (r - b.rank());
    const index_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    out.push_back(std::max(da, db));
  }
  return out;
}

template <class Fn>
Tensor map_ref(const Tensor& x, Fn fn) {
  Tensor out = Tensor::empty(x.shape());
  for (index_t i = 0; i < x.numel(); ++i) out.data()[i] = fn(x.data()[i]);
  return out;
}
template <class Fn>
Tensor zip_ref(const Tensor& a, const Tensor& b, Fn fn) {
  const Shape s = broadcast_shape_ref(a.shape(), b.shape());
  Tensor out = Tensor::empty(s);
  for (index_t i = 0; i < out.numel(); ++i) {
    const auto idx = unravel(i, s);
    out.data()[i] =
        fn(a.data()[broadcast_source(idx, a.shape())], b.data()[broadcast_source(idx, b.shape())]);
  }
  return out;
}
// Sum of x over the axes flagged in `reduce`, keeping them with extent 1.
inline Tensor sum_keepdim_ref(const Tensor& x, const std::vector<bool>& reduce) {
  Shape keep;
  for (int d = 0; d < x.rank(); ++d) keep.push_back(reduce[d] ? 1 : x.shape()[d]);
  Tensor out = Tensor::zeros(keep);
  for (index_t i = 0; i < x.numel(); ++i)
    out.data()[broadcast_source(unravel(i, x.shape()), keep)] += x.data()[i];
  return out;
}

// --- op checks built on the above ------------------------------------------------------

// Value check against `ref` applied entry by entry, then the full harness, for a unary
// element-wise op `f` (a generic callable on one tensor-like argument).
template <class F, class Ref>
void check_elementwise(F f, Ref ref, const Tensor& x, GradcheckOptions options = {}) {
  const auto fn = [f](const auto& in) { return f(in[0]); };
  require_value(fn, {x}, map_ref(x, ref));
  require_gradcheck(fn, {x}, options);
}

// Entry-by-entry comparison of two tensors (non-finite expected entries must match exactly).
inline void require_close(const Tensor& got, const Tensor& expected, double rtol = 1e-12,
                          double atol = 1e-12) {
  REQUIRE(got.shape().to_string() == expected.shape().to_string());
  for (index_t i = 0; i < got.numel(); ++i) {
    INFO("entry " << i);
    const double e = expected.data()[i];
    if (std::isfinite(e))
      CHECK(got.data()[i] == Approx(e).epsilon(rtol).margin(atol));
    else
      CHECK(got.data()[i] == e);
  }
}

// The derivative of an element-wise op at each entry of x, by reverse mode (the gradient
// of sum(f(x))) and by forward mode (the tangent of f(x) along ones).
template <class F>
Tensor elementwise_grad(F f, const Tensor& x) {
  const Var xv(x, true);
  const auto g = grokalign::grad<double>({sum(f(xv))}, {xv});
  return g[0].value();
}
template <class F>
Tensor elementwise_tangent(F f, const Tensor& x) {
  const DualT y = f(DualT(x, Tensor::ones(x.shape())));
  return y.tangent().defined() ? y.tangent() : Tensor::zeros(x.shape());
}

inline bool all_zero(const Tensor& t) {
  for (double v : t)
    if (v != 0.0) return false;
  return true;
}

}  // namespace op_check
