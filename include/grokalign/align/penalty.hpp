#pragma once
// The GrokAlign penalty: the Frobenius norm of each sample's input-output Jacobian,
// estimated with random projections (Hoffman et al., arXiv 1908.02729) and averaged over
// the batch. It is returned as a Var whose gradient with respect to the model's
// parameters is the derivative of a derivative, so it is added to the training loss.
//
// Built only on the engine's public transforms: grad(..., create_graph) for J^T v and
// forward mode through Dual<Var> for J u.
#include <cmath>
#include <limits>
#include <optional>
#include <string>

#include "grokalign/align/leading_product.hpp"
#include "grokalign/core/random.hpp"
#include "grokalign/ops.hpp"
#include "grokalign/reverse.hpp"

namespace grokalign::align {

enum class Estimator {
  kOutputProjections,  // k random unit v in R^C per sample: (C/k) sum |J^T v|^2, k VJPs
  kExact,              // one-hot v for every output: |J|_F^2 exactly, C VJPs
  kInputProjections,   // k random unit u in R^d per sample: (d/k) sum |J u|^2, k JVPs
};

enum class PenaltyForm {
  kNorm,             // mean_b sqrt(max(S_b, 1e-8)): the paper's GrokAlign penalty
  kHalfSquaredNorm,  // 0.5 * mean_b S_b: Hoffman et al.'s Jacobian regulariser
};

// How S_b = |J(x_b)^T v_b|^2 is formed when x enters the model through one matrix product
// h = x op(W) (a first Linear layer, op(W) of shape [d, n]). Directly: u = J^T v at x, then
// |u|^2 (forming u and differentiating it costs 6 B n d FLOPs per projection). Through the
// Gram matrix: with delta the cotangent at h, u = delta op(W)^T, so
// |u_b|^2 = delta_b G delta_b^T with G = op(W)^T op(W) ([n, n], formed and differentiated
// once: 3.5 n^2 d FLOPs, then 6 B n^2 per projection). Both give the same value and gradients
// up to rounding; kAuto takes whichever costs fewer FLOPs.
enum class FirstProduct { kAuto, kDirect, kGram };

struct PenaltyOptions {
  Estimator estimator = Estimator::kOutputProjections;
  PenaltyForm form = PenaltyForm::kNorm;
  int projections = 1;  // k (ignored by kExact, which uses C)
  // When set, the penalty becomes |level - penalty| ("constrained", holding the Jacobian
  // norm at a level instead of shrinking it).
  bool constrained = false;
  double level = 0.0;
  FirstProduct first_product = FirstProduct::kAuto;  // ignored by kInputProjections
  // Data-parallel training (grokalign/distributed.hpp): this batch is rows
  // [global_offset, global_offset + B) of a global batch of global_batch rows (0: the batch
  // is the whole batch). The random projections are then the rows a single process would draw
  // for those samples (the generator draws [global_batch, .] per projection, so every rank
  // must hold the same generator state), and the batch mean divides by global_batch, so the
  // penalties of all ranks add up to the single process's. Not with `constrained`, whose
  // |level - penalty| does not add up over ranks.
  index_t global_batch = 0;
  index_t global_offset = 0;
};

namespace detail {

template <class X>
void require_batched_output(const X& out, const Shape& in_shape, const char* op) {
  if (out.rank() != 2 || in_shape.rank() < 1 || out.shape()[0] != in_shape[0])
    grokalign::detail::throw_shape(op, "the model must map inputs [B, ...] (here " +
                                           in_shape.to_string() + ") to outputs [B, C], got " +
                                           out.shape().to_string());
}

// Rows of a [B, n] tensor scaled to unit length (Gaussian rows are then uniform on the
// sphere). A zero row cannot come out of a continuous distribution, but guard anyway.
template <Scalar T>
Tensor<T> random_unit_rows(index_t rows, index_t cols, Generator& gen) {
  Tensor<T> t = randn<T>(Shape{rows, cols}, gen);
  auto m = t.matrix();
  for (index_t r = 0; r < rows; ++r) {
    const T n = m.row(r).norm();
    if (n > T(0))
      m.row(r) /= n;
    else
      m(r, 0) = T(1);
  }
  return t;
}

// A sample whose input is not finite has no meaningful Jacobian, yet a ReLU network's comes
// out finite (NaN > 0 is false: the masks pick a pattern), so the penalty would silently be
// a number. Its term is made NaN instead, so the penalty and its gradients are NaN and the
// run's non-finite guard stops the step (docs/alignment.md). The check is one pass over x
// and allocates only when it finds something.
template <Scalar T>
Var<T> nan_where_input_nonfinite(const Var<T>& S, const Tensor<T>& x) {
  const index_t B = S.shape()[0], d = B ? x.numel() / B : 0;
  const auto xm = x.matrix(B, d);
  if (xm.allFinite()) return S;
  Tensor<T> mark = Tensor<T>::zeros(Shape{B});
  for (index_t b = 0; b < B; ++b)
    if (!xm.row(b).allFinite()) mark.data()[b] = std::numeric_limits<T>::quiet_NaN();
  return S + Var<T>(mark);
}

// Unit rows for samples [offset, offset + B) of a global batch: the rows the single process
// draws, so a sample's projection depends on its global index, not on how the batch is split.
template <Scalar T>
Tensor<T> random_unit_rows_of(index_t rows, index_t cols, Generator& gen,
                              const PenaltyOptions& opt) {
  if (opt.global_batch == 0) return random_unit_rows<T>(rows, cols, gen);
  return random_unit_rows<T>(opt.global_batch, cols, gen).rows(opt.global_offset, rows);
}

template <Scalar T>
Var<T> finish_penalty(const Var<T>& S, const PenaltyOptions& opt) {
  if (opt.global_batch > 0) {  // this shard's share of the global batch mean
    const T inv_g = T(1) / static_cast<T>(opt.global_batch);
    return opt.form == PenaltyForm::kNorm ? sum(sqrt(maximum(S, T(1e-8)))) * inv_g
                                          : sum(S) * (T(0.5) * inv_g);
  }
  Var<T> pen = opt.form == PenaltyForm::kNorm ? mean(sqrt(maximum(S, T(1e-8)))) : mean(S) * T(0.5);
  if (opt.constrained) pen = abs(pen - static_cast<T>(opt.level));
  return pen;
}

template <Scalar T>
void check_options(const PenaltyOptions& opt, index_t batch) {
  if (opt.projections < 1 && opt.estimator != Estimator::kExact)
    grokalign::detail::throw_shape("grokalign_penalty", "projections must be at least 1, got " +
                                                            std::to_string(opt.projections));
  if (opt.global_batch == 0 && opt.global_offset == 0) return;
  if (opt.global_offset < 0 || opt.global_batch < 1 || opt.global_offset + batch > opt.global_batch)
    grokalign::detail::throw_shape("grokalign_penalty", "a batch of " + std::to_string(batch) +
                                                            " rows at global_offset " +
                                                            std::to_string(opt.global_offset) +
                                                            " does not fit a global_batch of " +
                                                            std::to_string(opt.global_batch));
  if (opt.constrained)
    grokalign::detail::throw_shape("grokalign_penalty",
                                   "the constrained penalty |level - penalty| cannot be split over "
                                   "a global batch (global_batch); compute it on the whole batch");
}

}  // namespace detail

// Penalty from an output already computed on an input Var that requires grad, so a
// training step runs the forward pass once: out = model(x); loss = task(out) + lambda * pen.
// Supports the output-projection and exact estimators.
template <Scalar T>
Var<T> grokalign_penalty_from(const Var<T>& out, const Var<T>& x, Generator& gen,
                              const PenaltyOptions& opt = {}) {
  constexpr const char* op = "grokalign_penalty";
  detail::check_options<T>(opt, x.rank() ? x.shape()[0] : 0);
  detail::require_batched_output(out, x.shape(), op);
  if (opt.estimator == Estimator::kInputProjections)
    grokalign::detail::throw_autodiff(op,
                                      "the input-projection estimator needs the model itself; "
                                      "call grokalign_penalty(model, x, gen, options)");
  if (!x.requires_grad())
    grokalign::detail::throw_autodiff(op,
                                      "the input Var must require grad (Var(x, true)) so that "
                                      "J^T v can be taken with respect to it");
  const index_t B = out.shape()[0], C = out.shape()[1], d = x.numel() / (B ? B : 1);
  const bool exact = opt.estimator == Estimator::kExact;
  const int k = exact ? static_cast<int>(C) : opt.projections;
  std::optional<detail::LeadingProduct<T>> lead;
  if (opt.first_product != FirstProduct::kDirect) lead = detail::find_leading_product(out, x);
  if (lead && opt.first_product == FirstProduct::kAuto) {
    const double n = static_cast<double>(lead->h.shape()[1]), dd = static_cast<double>(d);
    const double direct = 6.0 * k * double(B) * n * dd;
    // G (kernels::gram_flops), its weight gradient (2 n^2 d) and 6 B n^2 per projection.
    const double via_gram =
        kernels::gram_flops(lead->h.shape()[1], d) + 2.0 * n * n * dd + 6.0 * k * double(B) * n * n;
    if (!(via_gram < direct)) lead.reset();
  }
  Var<T> gram_matrix;
  if (lead) gram_matrix = gram(lead->weight, /*of_columns=*/!lead->weight_transposed);

  Var<T> S;
  for (int i = 0; i < k; ++i) {
    Tensor<T> v;
    if (exact) {
      v = Tensor<T>::zeros(out.shape());
      for (index_t b = 0; b < B; ++b) v.data()[b * C + i] = T(1);
    } else {
      v = detail::random_unit_rows_of<T>(B, C, gen, opt);
    }
    if (lead) {
      const Var<T> delta = grad<T>(out, lead->h, Var<T>(v), {.create_graph = true});
      S = accumulate(S, sum(matmul(delta, gram_matrix) * delta, {1}));
    } else {
      const Var<T> u = grad<T>(out, x, Var<T>(v), {.create_graph = true});
      S = accumulate(S, row_sq_norm(reshape(u, Shape{B, d})));
    }
  }
  if (!exact) S = S * (static_cast<T>(C) / static_cast<T>(k));
  return detail::finish_penalty(detail::nan_where_input_nonfinite(S, x.value()), opt);
}

// Penalty of `model` (a callable on Var<T>, and on Dual<Var<T>> for the input-projection
// estimator, mapping [B, ...] to [B, C]) at the batch x.
template <Scalar T, class Model>
Var<T> grokalign_penalty(Model&& model, const Tensor<T>& x, Generator& gen,
                         const PenaltyOptions& opt = {}) {
  detail::check_options<T>(opt, x.rank() ? x.shape()[0] : 0);
  if (opt.estimator != Estimator::kInputProjections) {
    const Var<T> xv(x, true);
    return grokalign_penalty_from(Var<T>(model(xv)), xv, gen, opt);
  }
  // J u by forward mode, recorded on Vars so the result is differentiable in the weights.
  const index_t B = x.rank() ? x.shape()[0] : 0, d = B ? x.numel() / B : 0;
  Var<T> S;
  for (int i = 0; i < opt.projections; ++i) {
    const Tensor<T> u = detail::random_unit_rows_of<T>(B, d, gen, opt).reshape(x.shape());
    const Dual<Var<T>> out = model(Dual<Var<T>>(Var<T>(x), Var<T>(u)));
    detail::require_batched_output(out, x.shape(), "grokalign_penalty");
    const index_t C = out.shape()[1];
    const Var<T> ju =
        out.tangent().defined() ? out.tangent() : Var<T>(Tensor<T>::zeros(Shape{B, C}));
    S = accumulate(S, row_sq_norm(ju));
  }
  S = S * (static_cast<T>(d) / static_cast<T>(opt.projections));
  return detail::finish_penalty(detail::nan_where_input_nonfinite(S, x), opt);
}

}  // namespace grokalign::align
