#pragma once
// Jacobian alignment: how much of a sample's Jacobian energy lies along its own input,
//
//   JA_b = |J(x_b) x_b|^2 / (|x_b|^2 |J(x_b)|_F^2)   in [0, 1],
//
// 1 exactly when every row of J is parallel to x_b (a rank-one Jacobian whose right
// singular vector is the input). As a recorded per-sample Var, as a penalty
// mean_b (1 - JA_b) differentiable in the parameters, and as a measurement for logging.
//
// Every estimator splits |J|_F^2 = |J x^|^2 + |J P|_F^2 (x^ = x / |x|, P the projection
// orthogonal to x) and estimates only the second term with random projections, so the
// estimate is never below the numerator: JA_b stays in [0, 1] for every draw (a plain
// ratio of the numerator to a random estimate of |J|_F^2 could be arbitrarily large), and
// a rank-one Jacobian along x_b gives exactly 1 whatever the draw.
#include <algorithm>
#include <string>

#include "grokalign/align/alignment_penalty.hpp"
#include "grokalign/align/penalty.hpp"
#include "grokalign/forward.hpp"
#include "grokalign/ops.hpp"
#include "grokalign/reverse.hpp"

namespace grokalign::align {

template <Scalar T>
struct JacobianAlignmentStats {
  Tensor<T> alignment;     // [B] JA_b (0 for a zero input or a zero Jacobian)
  Tensor<T> along_input;   // [B] |J(x_b) x_b|^2
  Tensor<T> frobenius_sq;  // [B] |J(x_b)|_F^2 (an estimate unless exact; 0 where x_b = 0)
  T mean;                  // of alignment over the batch
};

namespace detail {

// JA_b = along_b / max(scaled_b, 1e-16): the floor is (1e-8)^2, centroid alignment's floor
// on |c| |x| squared, so a zero input or a zero Jacobian gives JA_b = 0, never 0/0.
template <Scalar T>
struct AlignmentParts {
  Var<T> along;   // [B] |J x_b|^2
  Var<T> scaled;  // [B] |x_b|^2 times |J(x_b)|_F^2 or its estimate (>= along)
  Var<T> ratio() const { return along / maximum(scaled, T(1e-16)); }
};

// The estimator's projections and the batch's place in its global batch.
inline void check_estimator_options(const AlignmentPenaltyOptions& opt, index_t batch,
                                    const char* op) {
  if (opt.projections < 1 && opt.estimator != Estimator::kExact)
    grokalign::detail::throw_shape(
        op, "projections must be at least 1, got " + std::to_string(opt.projections));
  check_global_batch(opt, batch, op);
}

// Random unit rows for this batch's samples: with global_batch set, the rows the single
// process draws for them (penalty.hpp's random_unit_rows_of), so that a sample's projection
// depends on its global index, not on how the batch is split.
template <Scalar T>
Tensor<T> projection_rows(index_t rows, index_t cols, Generator& gen,
                          const AlignmentPenaltyOptions& opt) {
  return random_unit_rows_of<T>(
      rows, cols, gen,
      PenaltyOptions{.global_batch = opt.global_batch, .global_offset = opt.global_offset});
}

// Exact: C recorded VJPs with one-hot cotangents give every sample's Jacobian rows J_j, and
// (J x)_j = <J_j, x>, so J x costs nothing more.
template <Scalar T>
AlignmentParts<T> exact_parts(const Var<T>& out, const Var<T>& x, const Var<T>& xf,
                              const Var<T>& x_sq) {
  const index_t B = out.shape()[0], C = out.shape()[1];
  Var<T> along, fro;
  for (index_t j = 0; j < C; ++j) {
    Tensor<T> v = Tensor<T>::zeros(out.shape());
    for (index_t b = 0; b < B; ++b) v.data()[b * C + j] = T(1);
    const Var<T> u = recorded_input_vjp(out, x, Var<T>(v));
    const Var<T> p = sum(u * xf, {1});
    along = accumulate(along, p * p);
    fro = accumulate(fro, row_sq_norm(u));
  }
  if (!along.defined())
    return {Var<T>(Tensor<T>::zeros(Shape{B})), Var<T>(Tensor<T>::zeros(Shape{B}))};
  return {along, x_sq * fro};
}

// Random unit output projections v_i: with u_i = J^T v_i, E[C |P u_i|^2] = |J P|_F^2, and
// |x|^2 |P u|^2 = |x|^2 |u|^2 - <u, x>^2 (Lagrange's identity: no division by |x|^2).
// J x comes from forward mode when `jx` is given; otherwise by the double backward: with a
// dummy cotangent w that requires grad, u(w) = J^T w is linear in w and
// grad_w <u(w), x> = J x, recorded. The first projection's u serves both.
template <Scalar T>
AlignmentParts<T> projected_parts(const Var<T>& out, const Var<T>& x, const Var<T>& xf,
                                  const Var<T>& x_sq, Var<T> jx, Generator& gen,
                                  const AlignmentPenaltyOptions& opt) {
  const index_t B = out.shape()[0], C = out.shape()[1];
  const int k = opt.projections;
  Var<T> orth;
  for (int i = 0; i < k; ++i) {
    const Var<T> w(projection_rows<T>(B, C, gen, opt), /*requires_grad=*/!jx.defined() && i == 0);
    const Var<T> u = recorded_input_vjp(out, x, w);
    const Var<T> p = sum(u * xf, {1});  // <u_b, x_b> = <v_b, J x_b>
    if (w.requires_grad()) {
      const Var<T> s = sum(p);
      if (s.requires_grad())
        jx = grad<T>(s, w, Var<T>(), {.create_graph = true, .allow_unused = true});
      if (!jx.defined()) jx = Var<T>(Tensor<T>::zeros(out.shape()));  // J = 0
    }
    // Clamped at 0: the identity is >= 0 (Cauchy-Schwarz) up to rounding.
    orth = accumulate(orth, maximum(x_sq * row_sq_norm(u) - p * p, T(0)));
  }
  const Var<T> along = row_sq_norm(jx);
  return {along, along + orth * (static_cast<T>(C) / static_cast<T>(k))};
}

// The parts from a forward pass already taken (output projections or exact).
template <Scalar T>
AlignmentParts<T> parts_from(const Var<T>& out, const Var<T>& x, Generator& gen,
                             const AlignmentPenaltyOptions& opt, const char* op) {
  check_estimator_options(opt, x.rank() ? x.shape()[0] : 0, op);
  check_alignment_inputs(out, x, op);
  if (opt.estimator == Estimator::kInputProjections)
    grokalign::detail::throw_autodiff(op,
                                      "the input-projection estimator needs the model itself; "
                                      "call jacobian_alignment_penalty(model, x, gen, options)");
  const Var<T> xf = reshape(x, Shape{x.shape()[0], per_sample_size(x.shape())});
  const Var<T> x_sq = row_sq_norm(xf);
  if (opt.estimator == Estimator::kExact) return exact_parts(out, x, xf, x_sq);
  return projected_parts(out, x, xf, x_sq, Var<T>(), gen, opt);
}

// The parts with J x by forward mode: one pass on duals whose tangent is x itself.
template <Scalar T, class Model>
AlignmentParts<T> parts_of_model(Model&& model, const Tensor<T>& x, Generator& gen,
                                 const AlignmentPenaltyOptions& opt, const char* op) {
  check_estimator_options(opt, x.rank() ? x.shape()[0] : 0, op);
  if (x.rank() < 1) grokalign::detail::throw_shape(op, "input needs a batch axis");
  if (opt.estimator == Estimator::kExact) {  // the C rows give J x: no forward mode needed
    const Var<T> xv(x, true);
    return parts_from(Var<T>(model(xv)), xv, gen, opt, op);
  }
  const bool reverse = opt.estimator == Estimator::kOutputProjections;
  const Var<T> xv(x, reverse);
  const Dual<Var<T>> y = model(Dual<Var<T>>(xv, Var<T>(x)));
  require_batched_output(y, x.shape(), op);
  const index_t B = x.shape()[0], d = per_sample_size(x.shape()), C = y.shape()[1];
  const Var<T> jx = y.tangent().defined() ? y.tangent() : Var<T>(Tensor<T>::zeros(Shape{B, C}));
  const Tensor<T> flat = x.reshape(Shape{B, d});
  const Var<T> x_sq(row_sq_norm(flat));
  if (reverse) return projected_parts(y.primal(), xv, Var<T>(flat), x_sq, jx, gen, opt);

  // Input projections: t = P u for random unit u in R^d, E[d |J P u|^2] = |J P|_F^2.
  Var<T> orth;
  for (int i = 0; i < opt.projections; ++i) {
    Tensor<T> t = projection_rows<T>(B, d, gen, opt);
    auto tm = t.matrix();
    const auto xm = flat.matrix();
    for (index_t b = 0; b < B; ++b) {
      const T n2 = xm.row(b).squaredNorm();
      if (n2 > T(0)) tm.row(b) -= (tm.row(b).dot(xm.row(b)) / n2) * xm.row(b);
    }
    const Dual<Var<T>> yt = model(Dual<Var<T>>(Var<T>(x), Var<T>(t.reshape(x.shape()))));
    if (yt.tangent().defined()) orth = accumulate(orth, row_sq_norm(yt.tangent()));
  }
  const Var<T> along = row_sq_norm(jx);
  if (!orth.defined()) return {along, along};
  return {along, along + x_sq * orth * (static_cast<T>(d) / static_cast<T>(opt.projections))};
}

template <Scalar T>
JacobianAlignmentStats<T> stats_of(const AlignmentParts<T>& parts, const Tensor<T>& x) {
  const index_t B = x.shape()[0], d = per_sample_size(x.shape());
  JacobianAlignmentStats<T> s{parts.ratio().value().clone(), parts.along.value().clone(),
                              Tensor<T>::zeros(Shape{B}), T(0)};
  const auto xm = x.matrix(B, d);
  for (index_t b = 0; b < B; ++b) {
    const T n2 = xm.row(b).squaredNorm();
    if (n2 > T(0)) s.frobenius_sq.data()[b] = parts.scaled.value().data()[b] / n2;
  }
  s.mean = B ? s.alignment.array().mean() : T(0);
  return s;
}

}  // namespace detail

// Per-sample Jacobian alignment JA_b [B] from the training forward pass (out = model(x), x a
// Var that requires grad, any shape, flattened per sample), recorded so that it can be
// differentiated in the parameters. Estimators of |J|_F^2 (the numerator |J x|^2 is exact):
//   kOutputProjections (k): k recorded VJPs, and J x by a reverse pass over the first VJP's
//                          graph (the double backward)
//   kExact:                C recorded VJPs, which give J x as well
// A zero input row or a model that ignores its input (J = 0) gives JA_b = 0.
template <Scalar T>
Var<T> jacobian_alignment_from(const Var<T>& out, const Var<T>& x, Generator& gen,
                               const AlignmentPenaltyOptions& opt = {}) {
  return detail::parts_from(out, x, gen, opt, "jacobian_alignment").ratio();
}

// Jacobian-alignment penalty from the training forward pass: mean_b (1 - JA_b) by default
// (see AlignmentPenaltyOptions for the squared and constrained forms). Random draws come
// from gen. Cost beyond the forward pass with k output projections: k VJPs plus one reverse
// pass over the first (the J x of the double backward), all recorded; training through them
// about doubles that. J = 0 gives JA_b = 0 for every sample: the penalty is 1, no gradient.
template <Scalar T>
Var<T> jacobian_alignment_penalty_from(const Var<T>& out, const Var<T>& x, Generator& gen,
                                       const AlignmentPenaltyOptions& opt = {}) {
  detail::check_alignment_penalty(opt, x.rank() ? x.shape()[0] : 0, "jacobian_alignment_penalty");
  return detail::finish_alignment_penalty(jacobian_alignment_from(out, x, gen, opt), opt);
}

// The penalty of a model (a callable on Var<T> and on Dual<Var<T>>, [B, ...] -> [B, C]) at
// the batch x, with J x by forward mode: one pass on duals (primal and tangent) whose
// tangent is x, recorded. Then |J|_F^2 by k VJPs on that pass's primal output
// (kOutputProjections), k more dual passes (kInputProjections: no reverse pass before
// training), or C VJPs (kExact, which takes J x from them and skips forward mode).
template <Scalar T, class Model>
Var<T> jacobian_alignment_penalty(Model&& model, const Tensor<T>& x, Generator& gen,
                                  const AlignmentPenaltyOptions& opt = {}) {
  detail::check_alignment_penalty(opt, x.rank() ? x.shape()[0] : 0, "jacobian_alignment_penalty");
  return detail::finish_alignment_penalty(
      detail::parts_of_model(model, x, gen, opt, "jacobian_alignment").ratio(), opt);
}

// The measurement for logging: JA_b, |J x_b|^2 and |J(x_b)|_F^2 exactly, from C backward
// passes (no recording) over one forward pass; `model` needs only to accept Var<T>.
template <Scalar T, class Model>
JacobianAlignmentStats<T> jacobian_alignment(Model&& model, const Tensor<T>& x) {
  constexpr const char* op = "jacobian_alignment";
  if (x.rank() < 1) grokalign::detail::throw_shape(op, "input needs a batch axis");
  const Var<T> xv(x, true);
  const Var<T> out = model(xv);
  detail::require_batched_output(out, x.shape(), op);
  const index_t B = x.shape()[0], d = detail::per_sample_size(x.shape()), C = out.shape()[1];
  Tensor<T> along = Tensor<T>::zeros(Shape{B}), fro = Tensor<T>::zeros(Shape{B});
  const auto xm = x.matrix(B, d);
  Tensor<T> seed = Tensor<T>::zeros(out.shape());
  for (index_t j = 0; j < C && out.requires_grad(); ++j) {
    for (index_t b = 0; b < B; ++b) seed.data()[b * C + j] = T(1);
    const Var<T> g = grad<T>(out, xv, Var<T>(seed), {.create_graph = false, .allow_unused = true});
    for (index_t b = 0; b < B; ++b) seed.data()[b * C + j] = T(0);
    if (!g.defined()) continue;
    const auto gm = g.value().matrix(B, d);
    for (index_t b = 0; b < B; ++b) {
      const T p = gm.row(b).dot(xm.row(b));
      along.data()[b] += p * p;
      fro.data()[b] += gm.row(b).squaredNorm();
    }
  }
  JacobianAlignmentStats<T> s{Tensor<T>::empty(Shape{B}), along, fro, T(0)};
  for (index_t b = 0; b < B; ++b)
    s.alignment.data()[b] =
        along.data()[b] / std::max(xm.row(b).squaredNorm() * fro.data()[b], T(1e-16));
  s.mean = B ? s.alignment.array().mean() : T(0);
  return s;
}

// The measurement with one of the penalty's estimators (options.estimator; the model must
// accept Dual<Var<T>> unless it is kExact), e.g. to log exactly what is being trained.
template <Scalar T, class Model>
JacobianAlignmentStats<T> jacobian_alignment(Model&& model, const Tensor<T>& x, Generator& gen,
                                             const AlignmentPenaltyOptions& opt) {
  return detail::stats_of(detail::parts_of_model(model, x, gen, opt, "jacobian_alignment"), x);
}

}  // namespace grokalign::align
