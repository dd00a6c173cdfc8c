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
// The buffer (every parameter's elements and one flag per parameter counting the ranks that
// had a gradient for it, in buckets) is allocated on the first call and reused: later calls
// pack, reduce and unpack without touching the heap. After the call each parameter's grad() is a
// view into the buffer (no copy back); a parameter no rank had a gradient for stays without one, so
// the optimiser skips it on every rank alike.
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
  // bucket_elements: the overlapped mode's bucket size (a bucket takes parameters until the
  // next would pass it; one parameter at least).
  explicit GradientAllreduce(std::vector<Var<T>> params, Communicator comm = {},
                             index_t bucket_elements = kBucketElements)
      : params_(std::move(params)), comm_(comm), bucket_elements_(bucket_elements) {}

  // Sums every parameter's gradient over the ranks (all ranks must call it, with the same
  // parameters in the same order), in one allreduce over the whole buffer.
  void operator()() {
    if (!flat_.defined()) layout();
    for (std::size_t i = 0; i < params_.size(); ++i) pack(i);
    comm_.allreduce(flat_.data(), flat_.numel());
    unpack();
  }

  // The same sum overlapped with the backward pass: between begin() and finish(), ready(i)
  // (backward_reporting's report that parameter i's gradient is final) packs it, and once
  // every parameter of a bucket is in, starts that bucket's non-blocking allreduce while the
  // backward goes on; finish() waits for the rest. Buckets hold parameters in reverse order,
  // so the last layers' (final first) fill the first bucket. The sums are those of
  // operator() element by element (same buffer, same reduction per element).
  //   reduce.begin();
  //   backward_reporting(loss, params, reduce);   // calls reduce(i) = reduce.ready(i)
  //   reduce.finish();
  void begin() {
    if (!flat_.defined()) layout();
    std::fill(missing_.begin(), missing_.end(), 0);
    for (const auto& b : buckets_) missing_[b.id] = b.count;
    std::fill(packed_.begin(), packed_.end(), 0);
    started_ = 0;
  }
  void ready(std::size_t i) {
    if (packed_[i]) return;
    pack(i);
    packed_[i] = 1;
    const std::size_t b = bucket_of_[i];
    if (--missing_[b] == 0) start(b);
    progress();
  }
  void operator()(std::size_t i) { ready(i); }
  void finish() {
    for (std::size_t i = 0; i < params_.size(); ++i)
      if (!packed_[i]) ready(i);  // never reported (no backward_reporting): packed here
    wait_all();
    unpack();
  }

  const std::vector<Var<T>>& parameters() const noexcept { return params_; }
  // Elements reduced per call: every parameter's, plus one flag per parameter.
  index_t buffer_elements() const noexcept { return flat_.defined() ? flat_.numel() : 0; }
  // Buckets of the overlapped mode (at least one; a bucket holds about bucket_elements).
  std::size_t buckets() const noexcept { return buckets_.size(); }

  static constexpr index_t kBucketElements = 1 << 15;  // 256 KiB of f64: a few per model

 private:
  struct Bucket {
    std::size_t id = 0, count = 0;  // its parameters
    index_t begin = 0, size = 0;    // its span of the buffer: values, then one flag each
  };

  // The buffer: bucket by bucket, each its parameters' elements then one flag per parameter
  // (1 where this rank had a gradient; summed, the ranks that had one).
  void layout() {
    const std::size_t n = params_.size();
    views_.assign(n, Tensor<T>());
    bucket_of_.assign(n, 0);
    flag_at_.assign(n, 0);
    packed_.assign(n, 0);
    buckets_.clear();
    index_t total = 0;
    for (const auto& p : params_) total += p.numel() + 1;
    flat_ = Tensor<T>::zeros(Shape{total});
    index_t at = 0;
    for (std::size_t k = 0; k < n;) {
      Bucket b{buckets_.size(), 0, at, 0};
      std::size_t first = k;
      index_t elements = 0;
      while (k < n && (k == first || elements + params_[n - 1 - k].numel() <= bucket_elements_))
        elements += params_[n - 1 - k++].numel();
      b.count = k - first;
      for (std::size_t j = first; j < k; ++j) {
        const std::size_t i = n - 1 - j;
        views_[i] = flat_.rows(at, params_[i].numel()).reshape(params_[i].shape());
        at += params_[i].numel();
        bucket_of_[i] = b.id;
      }
      for (std::size_t j = first; j < k; ++j) flag_at_[n - 1 - j] = at++;
      b.size = at - b.begin;
      buckets_.push_back(b);
    }
    missing_.assign(buckets_.size(), 0);
#if defined(GROKALIGN_HAVE_MPI)
    requests_.assign(buckets_.size(), MPI_REQUEST_NULL);
#endif
  }

  void pack(std::size_t i) {
    const Tensor<T>& g = params_[i].grad();
    Tensor<T>& slot = views_[i];
    if (g.defined()) {
      if (g.data() != slot.data()) std::memcpy(slot.data(), g.data(), sizeof(T) * g.numel());
      flat_.data()[flag_at_[i]] = T(1);
    } else {
      slot.fill(T(0));
      flat_.data()[flag_at_[i]] = T(0);
    }
  }

  void unpack() {
    const T* buf = flat_.data();
    for (std::size_t i = 0; i < params_.size(); ++i)
      params_[i].set_grad(buf[flag_at_[i]] > T(0) ? views_[i] : Tensor<T>());
  }

  void start(std::size_t b) {
    ++started_;
#if defined(GROKALIGN_HAVE_MPI)
    if (comm_.size() > 1 && !comm_.is_local()) {
      const Bucket& k = buckets_[b];
      if (k.size > (index_t{1} << 30))  // MPI counts are int: a huge bucket in one call
        comm_.allreduce(flat_.data() + k.begin, k.size);
      else
        detail::check(MPI_Iallreduce(MPI_IN_PLACE, flat_.data() + k.begin, static_cast<int>(k.size),
                                     detail::mpi_type<T>(), MPI_SUM, comm_.native(), &requests_[b]),
                      "MPI_Iallreduce");
    }
#else
    (void)b;
#endif
  }
  // Lets MPI move the started reductions on while the backward computes.
  void progress() {
#if defined(GROKALIGN_HAVE_MPI)
    if (started_ == 0 || comm_.size() <= 1 || comm_.is_local()) return;
    int done = 0;
    detail::check(MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &done,
                              MPI_STATUSES_IGNORE),
                  "MPI_Testall");
#endif
  }
  void wait_all() {
#if defined(GROKALIGN_HAVE_MPI)
    if (comm_.size() > 1 && !comm_.is_local())
      detail::check(
          MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE),
          "MPI_Waitall");
#endif
  }

  std::vector<Var<T>> params_;
  Communicator comm_;
  index_t bucket_elements_ = kBucketElements;
  Tensor<T> flat_;
  std::vector<Tensor<T>> views_;
  std::vector<std::size_t> bucket_of_;
  std::vector<index_t> flag_at_;
  std::vector<char> packed_;
  std::vector<Bucket> buckets_;
  std::vector<std::size_t> missing_;
  std::size_t started_ = 0;
#if defined(GROKALIGN_HAVE_MPI)
  std::vector<MPI_Request> requests_;
#endif
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
