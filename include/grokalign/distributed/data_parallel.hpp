#pragma once
// One object for a training loop's data-parallel step, so that a program's step reads the
// same with one process and with N ranks:
//
//   distributed::DataParallel<T> dp(opt.parameters());       // rank 0's weights everywhere
//   const auto sh = dp.shard(xb.shape()[0]);                  // this rank's rows
//   const Var<T> xv(dp.rows(xb, sh), true);
//   const Var<T> out = model(xv);
//   Var<T> loss = dp.share_of(mse(out, dp.rows(yb, sh)), sh)  // its share of the batch mean
//                 + align::grokalign_penalty_from(out, xv, gen, dp.penalty_options(sh)) * lambda;
//   opt.zero_grad(true); loss.backward(opt.parameters());
//   dp.reduce_gradients();                                     // the global batch's gradient
//   opt.step();
//
// With one process (no launcher, or a build without MPI) every call is the identity: the
// shard is the whole batch, the share 1, the penalty options the defaults, and nothing is
// copied, so the step is exactly the single-process step. With N ranks the step equals the
// single process's on the same global batch to rounding (gradient_allreduce.hpp says why).
#include <cstdint>
#include <utility>
#include <vector>

#include "grokalign/align/alignment_penalty.hpp"
#include "grokalign/align/penalty.hpp"
#include "grokalign/core/tensor.hpp"
#include "grokalign/distributed/communicator.hpp"
#include "grokalign/distributed/gradient_allreduce.hpp"
#include "grokalign/distributed/shard.hpp"
#include "grokalign/reverse/var.hpp"

namespace grokalign::distributed {

template <Scalar T>
class DataParallel {
 public:
  // Copies rank 0's parameter values to every rank (a no-op for one process).
  explicit DataParallel(std::vector<Var<T>> params, Communicator comm = {})
      : comm_(comm), reduce_(std::move(params), comm) {
    if (parallel()) broadcast_parameters(reduce_.parameters(), comm_);
  }

  bool parallel() const { return comm_.size() > 1; }
  const Communicator& communicator() const noexcept { return comm_; }

  // This rank's rows of a global batch of `global_rows`.
  Shard shard(index_t global_rows) const {
    return shard_of(global_rows, comm_.rank(), comm_.size());
  }
  // This rank's rows of a global batch tensor (a view) or of per-sample integers.
  Tensor<T> rows(const Tensor<T>& global_batch, const Shard& s) const {
    return parallel() ? shard_rows(global_batch, s) : global_batch;
  }
  kernels::Indices rows(const kernels::Indices& global, const Shard& s) const {
    return parallel() ? shard_rows(global, s) : global;
  }
  std::vector<index_t> rows(const std::vector<index_t>& labels, const Shard& s) const {
    if (!parallel()) return labels;
    const auto first = labels.begin() + s.offset;
    return std::vector<index_t>(first, first + s.rows);
  }
  // What this rank's mean over its rows is multiplied by so that the ranks' losses add up to
  // the global batch mean: B_r / G.
  T share(const Shard& s) const {
    return parallel() && s.global > 0 ? static_cast<T>(double(s.rows) / double(s.global)) : T(1);
  }
  // This rank's mean over its rows as its share of the global mean (times B_r / G), so that
  // the ranks' figures add up to the whole batch's: a loss before backward (itself, with no
  // extra node, for one process), or a figure to log before sum() (0 for an empty block,
  // whose mean is undefined).
  Var<T> share_of(const Var<T>& mean, const Shard& s) const {
    return parallel() ? mean * share(s) : mean;
  }
  double share_of(double mean, const Shard& s) const {
    return s.rows ? mean * (double(s.rows) / double(s.global)) : 0.0;
  }
  // `base` with this shard's place in the global batch (the projections keyed by global
  // sample index, the mean over G); `base` itself for one process. Options: the GrokAlign
  // penalty's (the default) or the alignment penalties' (align::AlignmentPenaltyOptions).
  template <class Options = align::PenaltyOptions>
  Options penalty_options(const Shard& s, Options base = {}) const {
    if (parallel()) {
      base.global_batch = s.global;
      base.global_offset = s.offset;
    }
    return base;
  }
  // Every parameter's gradient summed over the ranks (every rank must call it).
  void reduce_gradients() {
    if (parallel()) reduce_();
  }
  // A per-rank figure summed over the ranks (the ranks' shares of a batch's penalty).
  double sum(double v) const { return parallel() ? comm_.sum(v) : v; }
  // n per-rank figures summed over the ranks in place, in one allreduce.
  void sum(double* v, std::int64_t n) const {
    if (parallel()) comm_.allreduce(v, n);
  }

 private:
  Communicator comm_;
  GradientAllreduce<T> reduce_;
};

}  // namespace grokalign::distributed
