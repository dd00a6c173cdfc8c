#pragma once
// Data-parallel gradients: every rank computes the gradient of its share of the loss, and one
// in-place MPI_Allreduce (MPI_SUM) over a single flat buffer holding every parameter's
// gradient makes each rank's gradient the sum over ranks. For that sum to be the gradient of
// the global batch's mean loss, each rank's loss must be its samples' sum divided by the
// GLOBAL batch size G (not its own B_r):
//   loss_r = (1/G) sum_{b in rank r} l_b = mean_r * (B_r / G)
//   penalty: align::PenaltyOptions{.global_batch = G, .global_offset = shard.offset}
// and then sum_r grad(loss_r) = grad((1/G) sum_b l_b), the single process's gradient.
//
// The buffer (every parameter's elements, then one flag per parameter counting the ranks that
// had a gradient for it) is allocated on the first call and reused: later calls pack, reduce
// and unpack without touching the heap. After the call each parameter's grad() is a view
// into the buffer (no copy back); a parameter no rank had a gradient for stays without one,
// so the optimiser skips it on every rank alike.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "grokalign/core/error.hpp"
#include "grokalign/core/tensor.hpp"
#include "grokalign/distributed/communicator.hpp"
#include "grokalign/reverse/var.hpp"

namespace grokalign::distributed {

template <Scalar T>
class GradientAllreduce {
 public:
  explicit GradientAllreduce(std::vector<Var<T>> params, Communicator comm = {})
      : params_(std::move(params)), comm_(comm) {}

  // Sums every parameter's gradient over the ranks (all ranks must call it, with the same
  // parameters in the same order).
  void operator()() {
    if (!flat_.defined()) layout();
    T* buf = flat_.data();
    const std::size_t n = params_.size();
    for (std::size_t i = 0; i < n; ++i) {
      const Tensor<T>& g = params_[i].grad();
      Tensor<T>& slot = views_[i];
      if (g.defined()) {
        if (g.data() != slot.data()) std::memcpy(slot.data(), g.data(), sizeof(T) * g.numel());
        buf[total_ + static_cast<index_t>(i)] = T(1);
      } else {
        slot.fill(T(0));
        buf[total_ + static_cast<index_t>(i)] = T(0);
      }
    }
    comm_.allreduce(buf, flat_.numel());
    for (std::size_t i = 0; i < n; ++i)
      params_[i].set_grad(buf[total_ + static_cast<index_t>(i)] > T(0) ? views_[i] : Tensor<T>());
  }

  const std::vector<Var<T>>& parameters() const noexcept { return params_; }
  // Elements reduced per call: every parameter's, plus one flag per parameter.
  index_t buffer_elements() const noexcept { return flat_.defined() ? flat_.numel() : 0; }

 private:
  void layout() {
    total_ = 0;
    for (const auto& p : params_) total_ += p.numel();
    flat_ = Tensor<T>::zeros(Shape{total_ + static_cast<index_t>(params_.size())});
    views_.clear();
    views_.reserve(params_.size());
    index_t at = 0;
    for (const auto& p : params_) {
      views_.push_back(flat_.rows(at, p.numel()).reshape(p.shape()));
      at += p.numel();
    }
  }

  std::vector<Var<T>> params_;
  Communicator comm_;
  Tensor<T> flat_;
  std::vector<Tensor<T>> views_;
  index_t total_ = 0;
};

// Rank `root`'s parameter values copied to every rank (at the start of training, so that
// every rank starts from the same weights whatever its generator did), in one broadcast.
template <Scalar T>
void broadcast_parameters(const std::vector<Var<T>>& params, const Communicator& comm = {},
                          int root = 0) {
  index_t total = 0;
  for (const auto& p : params) total += p.numel();
  std::vector<T> buf(static_cast<std::size_t>(total));
  index_t at = 0;
  for (const auto& p : params) {
    std::memcpy(buf.data() + at, p.value().data(), sizeof(T) * p.numel());
    at += p.numel();
  }
  comm.broadcast(buf.data(), total, root);
  at = 0;
  for (const auto& p : params) {
    Tensor<T> w = p.value();  // shares the parameter's storage
    std::memcpy(w.data(), buf.data() + at, sizeof(T) * p.numel());
    at += p.numel();
  }
}

// Largest difference, over ranks and elements, between this rank's parameters and rank
// `root`'s: 0 when every rank holds identical weights (a check for tests and for runs that
// want to assert it every so often; it costs a broadcast of every parameter).
template <Scalar T>
double max_parameter_divergence(const std::vector<Var<T>>& params, const Communicator& comm = {},
                                int root = 0) {
  double worst = 0;
  for (const auto& p : params) {
    Tensor<T> theirs = p.value().clone();
    comm.broadcast(theirs.data(), theirs.numel(), root);
    const T* mine = p.value().data();
    for (index_t i = 0; i < theirs.numel(); ++i)
      worst = std::max(worst, static_cast<double>(std::abs(mine[i] - theirs.data()[i])));
  }
  return comm.max(worst);
}

}  // namespace grokalign::distributed
