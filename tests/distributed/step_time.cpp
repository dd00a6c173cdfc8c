// Step time of data-parallel GrokAlign training of the paper's MNIST MLP (784-196-196-196-10,
// bias-free ReLU, f64, CE + 1e-3 GrokAlign, AdamW, global batch 256 by default), for
// docs/scaling.md: run it as 1 and as N ranks (mpirun -np N) and compare. Prints, on rank 0,
// the median over the timed steps of the whole step and of its parts: forward and backward
// ("compute"), waiting at a barrier for the slowest rank ("wait": load imbalance, or a core
// shared with other work), the gradient allreduce alone, and AdamW's update.
// With `overlap` the allreduce runs bucket by bucket during the backward pass
// (backward_reporting + GradientAllreduce::begin/finish); "compute" then includes it and
// "allreduce" is what is left to wait for after the backward.
//   mpi_step_time [steps=40] [global_batch=256] [overlap]
// Synthetic inputs: the arithmetic of a step does not depend on the digits.
#include <grokalign/align.hpp>
#include <grokalign/distributed.hpp>
#include <grokalign/nn.hpp>
#include <grokalign/ops.hpp>
#include <grokalign/optim.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace ga = grokalign;
namespace dist = grokalign::distributed;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  dist::Environment env(&argc, &argv);
  const dist::Communicator comm = env.world();
  const int steps = argc > 1 ? std::atoi(argv[1]) : 40, warmup = 3;
  const ga::index_t G = argc > 2 ? std::atoll(argv[2]) : 256;
  const bool overlap = argc > 3 && std::string(argv[3]) == "overlap";
  using Clock = std::chrono::steady_clock;
  try {
    ga::Generator init(0), data(1), proj(2);
    auto model = ga::nn::make_mlp<double>(784, 196, 4, 10, false, init);
    const auto params = model.parameters();
    dist::broadcast_parameters(params, comm);
    ga::AdamW<double> adam(params, {.lr = 1e-3, .weight_decay = 0.01});
    dist::GradientAllreduce<double> reduce(params, comm);
    const ga::Tensor<double> x = ga::randn<double>(ga::Shape{G, 784}, data);
    std::vector<ga::index_t> y(static_cast<std::size_t>(G));
    for (auto& v : y) v = static_cast<ga::index_t>(data.below(10));
    const ga::Indices labels(y);
    const dist::Shard sh = dist::shard_of(G, comm.rank(), comm.size());
    const ga::Tensor<double> xs = dist::shard_rows(x, sh);
    const ga::Indices ys = dist::shard_rows(labels, sh);
    const ga::align::PenaltyOptions opt{.global_batch = sh.global, .global_offset = sh.offset};
    std::vector<double> step_ms, compute_ms, wait_ms, reduce_ms, update_ms;
    for (int s = 0; s < warmup + steps; ++s) {
      const auto t0 = Clock::now();
      const ga::Var<double> xv(xs, true);
      const ga::Var<double> out = model(xv);
      const ga::Var<double> loss = ga::cross_entropy(out, ys) * (double(sh.rows) / double(G)) +
                                   ga::align::grokalign_penalty_from(out, xv, proj, opt) * 1e-3;
      adam.zero_grad();
      if (overlap) {
        reduce.begin();
        ga::backward_reporting(loss, std::span<const ga::Var<double>>(params), reduce);
      } else {
        loss.backward(params);
      }
      const auto t1 = Clock::now();
      if (!overlap) comm.barrier();  // (overlapped, the wait is part of finish())
      const auto t2 = Clock::now();
      if (overlap)
        reduce.finish();
      else
        reduce();
      const auto t3 = Clock::now();
      adam.step();
      const auto t4 = Clock::now();
      auto ms = [](auto a, auto b) {
        return std::chrono::duration<double, std::milli>(b - a).count();
      };
      if (s >= warmup) {
        step_ms.push_back(ms(t0, t4));
        compute_ms.push_back(ms(t0, t1));
        wait_ms.push_back(ms(t1, t2));
        reduce_ms.push_back(ms(t2, t3));
        update_ms.push_back(ms(t3, t4));
      }
    }
    // The slowest rank sets the pace: report the max over ranks of each median.
    const double step = comm.max(median(step_ms)), compute = comm.max(median(compute_ms)),
                 wait = comm.max(median(wait_ms)), red = comm.max(median(reduce_ms)),
                 update = comm.max(median(update_ms));
    if (comm.is_root())
      std::printf(
          "ranks %d%s  global_batch %lld  parameters %lld  step_ms %.3f  compute_ms %.3f  "
          "wait_ms %.3f  allreduce_ms %.3f  update_ms %.3f\n",
          comm.size(), overlap ? " overlapped" : "", static_cast<long long>(G),
          static_cast<long long>(model.num_parameters()), step, compute, wait, red, update);
  } catch (const std::exception& e) {
    comm.abort(std::string("mpi_step_time: ") + e.what());
  }
  return 0;
}
