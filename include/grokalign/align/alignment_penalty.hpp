#pragma once
// Penalties that train on alignment itself rather than on the Jacobian norm: the options
// they share, and the centroid-alignment penalty. (The Jacobian-alignment penalty, which
// uses the same options, is in jacobian_alignment.hpp.)
//
// Centroid alignment of sample b is A_b = <c_b, x_b> / max(|c_b| |x_b|, 1e-8) with the
// centroid c_b = J(x_b)^T 1, exactly as centroids() computes it, but recorded
// (create_graph) so that the penalty mean_b (1 - A_b) can be differentiated in the
// parameters: a derivative of a derivative, like the GrokAlign penalty.
#include <limits>
#include <string>

#include "grokalign/align/penalty.hpp"
#include "grokalign/ops.hpp"
#include "grokalign/reverse.hpp"

namespace grokalign::align {

struct AlignmentPenaltyOptions {
  // mean_b (1 - A_b)^2 instead of mean_b (1 - A_b); with `constrained`,
  // (level - mean_b A_b)^2 instead of |level - mean_b A_b|.
  bool squared = false;
  // |level - mean_b A_b|: hold the mean alignment at a level instead of pushing it to 1.
  bool constrained = false;
  double level = 1.0;
  // Jacobian alignment only: the estimator of |J(x_b)|_F^2 in the denominator and its
  // number of random projections (kExact uses one per output, C; kInputProjections needs
  // the model: jacobian_alignment_penalty(model, x, gen, options)).
  Estimator estimator = Estimator::kOutputProjections;
  int projections = 1;
  // Data-parallel training, as PenaltyOptions::global_batch / global_offset: this batch is rows
  // [global_offset, global_offset + B) of a global batch of global_batch rows (0: the batch is
  // the whole batch). The mean over samples divides by global_batch, so the ranks' penalties
  // (and gradients) add up to the single process's; the Jacobian-alignment penalty's random
  // projections are the rows the single process draws for those samples (every rank must hold
  // the same generator state). Not with `constrained`: a function of the mean alignment does
  // not add up over ranks.
  index_t global_batch = 0;
  index_t global_offset = 0;
};

namespace detail {

template <Scalar T>
void check_alignment_inputs(const Var<T>& out, const Var<T>& x, const char* op) {
  require_batched_output(out, x.shape(), op);
  if (!x.requires_grad())
    grokalign::detail::throw_autodiff(op,
                                      "the input Var must require grad (Var(x, true)) so that "
                                      "the Jacobian can be taken with respect to it");
}

// Per-sample input size d of a batch [B, ...].
inline index_t per_sample_size(const Shape& s) {
  return s[0] ? s.numel() / s[0] : 0;
}

// J(x)^T w recorded (create_graph) and flattened to [B, d]. A model whose output does not
// depend on x has J = 0: the result is then a zero constant, not an error.
template <Scalar T>
Var<T> recorded_input_vjp(const Var<T>& out, const Var<T>& x, const Var<T>& w) {
  const Shape flat{x.shape()[0], per_sample_size(x.shape())};
  if (out.requires_grad()) {
    const Var<T> g = grad<T>(out, x, w, {.create_graph = true, .allow_unused = true});
    if (g.defined()) return reshape(g, flat);
  }
  return Var<T>(Tensor<T>::zeros(flat));
}

// The place of a batch of `batch` rows in its global batch (see
// AlignmentPenaltyOptions::global_batch); the same rule as PenaltyOptions'.
inline void check_global_batch(const AlignmentPenaltyOptions& opt, index_t batch, const char* op) {
  if (opt.global_batch == 0 && opt.global_offset == 0) return;
  if (opt.global_offset < 0 || opt.global_batch < 1 || opt.global_offset + batch > opt.global_batch)
    grokalign::detail::throw_shape(
        op, "a batch of " + std::to_string(batch) + " rows at global_offset " +
                std::to_string(opt.global_offset) + " does not fit a global_batch of " +
                std::to_string(opt.global_batch));
}

// What a penalty checks before any work: its place in the global batch, and that the form
// adds up over shards.
inline void check_alignment_penalty(const AlignmentPenaltyOptions& opt, index_t batch,
                                    const char* op) {
  check_global_batch(opt, batch, op);
  if (opt.constrained && opt.global_batch > 0)
    grokalign::detail::throw_shape(
        op,
        "the constrained penalty (level - mean alignment, absolute or squared) cannot be "
        "split over a global batch (global_batch " +
            std::to_string(opt.global_batch) +
            "): it is not a mean over samples; compute it on the whole batch");
}

// The penalty from per-sample alignments A [B] (see AlignmentPenaltyOptions).
template <Scalar T>
Var<T> finish_alignment_penalty(const Var<T>& A, const AlignmentPenaltyOptions& opt) {
  if (opt.constrained) {  // never with global_batch (check_alignment_penalty)
    const Var<T> gap = mean(A) - static_cast<T>(opt.level);
    return opt.squared ? gap * gap : abs(gap);
  }
  const Var<T> miss = T(1) - A;
  if (opt.global_batch > 0) {  // this shard's share of the global batch mean
    const T inv_g = T(1) / static_cast<T>(opt.global_batch);
    return (opt.squared ? sum(miss * miss) : sum(miss)) * inv_g;
  }
  return opt.squared ? mean(miss * miss) : mean(miss);
}

}  // namespace detail

// Per-sample centroid alignment A_b [B], recorded so that it can be differentiated in the
// parameters. `out` = model(x) with x a Var that requires grad; inputs of any shape are
// flattened per sample. The denominator is formed as sqrt(max(|c|^2 |x|^2, 1e-16)), which
// is max(|c| |x|, 1e-8) with a derivative that stays finite at a zero centroid or a zero
// input: there A_b = 0 (as in centroids()) and it passes no gradient. Cost: one recorded
// VJP (a backward pass) on top of the forward pass.
template <Scalar T>
Var<T> centroid_alignment_from(const Var<T>& out, const Var<T>& x) {
  detail::check_alignment_inputs(out, x, "centroid_alignment");
  const index_t B = x.shape()[0];
  const Var<T> xf = reshape(x, Shape{B, detail::per_sample_size(x.shape())});
  const Var<T> c = detail::recorded_input_vjp(out, x, Var<T>(Tensor<T>::ones(out.shape())));
  const Var<T> inner = sum(c * xf, {1});
  return inner / sqrt(maximum(row_sq_norm(c) * row_sq_norm(xf), T(1e-16)));
}

// Centroid-alignment penalty from the training forward pass (out = model(x), x a Var that
// requires grad): mean_b (1 - A_b) by default, so it equals 1 - mean(centroids().alignment)
// on the same model and batch. A model that ignores its input (J = 0) has A_b = 0 for every
// sample: the penalty is then 1 with no gradient. Cost beyond the forward pass: one recorded
// VJP; training through it adds about two passes more (as a GrokAlign step with k = 1).
// The estimator options are ignored (the centroid is exact).
template <Scalar T>
Var<T> centroid_alignment_penalty_from(const Var<T>& out, const Var<T>& x,
                                       const AlignmentPenaltyOptions& opt = {}) {
  detail::check_alignment_penalty(opt, x.rank() ? x.shape()[0] : 0, "centroid_alignment_penalty");
  return detail::finish_alignment_penalty(centroid_alignment_from(out, x), opt);
}

// The same for a model (a callable on Var<T>, [B, ...] -> [B, C]) at the batch x.
template <Scalar T, class Model>
Var<T> centroid_alignment_penalty(Model&& model, const Tensor<T>& x,
                                  const AlignmentPenaltyOptions& opt = {}) {
  const Var<T> xv(x, true);
  return centroid_alignment_penalty_from(Var<T>(model(xv)), xv, opt);
}

}  // namespace grokalign::align
