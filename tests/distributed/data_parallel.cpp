// Data-parallel GrokAlign training under mpirun (issue 13): N ranks, each training on its
// contiguous shard of the global batch with its loss divided by the global batch size and
// the penalty keyed by global sample index, one flat gradient allreduce per step, must end
// with the weights of one process trained on the whole global batch (to 1e-12 in double), and
// with identical weights on every rank. A plain program, not Catch2: every rank must take
// every collective in the same order, so each check's verdict is agreed by an allreduce
// before anyone acts on it, and a failure never leaves a rank waiting in a collective.
#include <grokalign/align.hpp>
#include <grokalign/distributed.hpp>
#include <grokalign/nn.hpp>
#include <grokalign/ops.hpp>
#include <grokalign/optim.hpp>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace ga = grokalign;
namespace dist = grokalign::distributed;
using ga::index_t;
using ga::Tensor;
using ga::Var;
using Opts = ga::align::PenaltyOptions;
using AlignOpts = ga::align::AlignmentPenaltyOptions;

namespace {

int failures = 0;

// Every rank reports its own error; all agree on the worst.
void check(const dist::Communicator& comm, const std::string& what, double local_error,
           double tolerance) {
  const double worst = comm.max(std::isnan(local_error) ? INFINITY : local_error);
  const bool ok = worst <= tolerance;
  if (!ok) ++failures;
  if (comm.is_root())
    std::printf("%s %s: max error %.3g over %d ranks (tolerance %.3g)\n", ok ? "ok  " : "FAIL",
                what.c_str(), worst, comm.size(), tolerance);
}

double max_abs_diff(const std::vector<Var<double>>& a, const std::vector<Var<double>>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    for (index_t j = 0; j < a[i].numel(); ++j)
      worst = std::max(worst, std::abs(a[i].value().data()[j] - b[i].value().data()[j]));
  return worst;
}

double max_rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::abs(a[i] - b[i]) / std::max(1.0, std::abs(b[i])));
  return worst;
}

struct Trained {
  std::vector<double> losses, penalties;
};

// Trains `model` for `steps` AdamW steps on batches drawn by `batch`. Distributed: each rank
// takes its shard and the gradients are allreduced; otherwise the whole global batch in this
// process. The data and projection generators are seeded alike on every rank, so every rank
// sees the same global batches and draws the same projections. `loss_of(model, x, labels,
// proj, opt, share)` returns {loss, penalty}, the task loss's batch mean scaled by `share`
// (rows / global rows). Options: PenaltyOptions or AlignmentPenaltyOptions (both carry the
// shard's place in the global batch).
template <class Model, class LossOf, class Batch, class Options>
Trained train(const Model& model, const std::vector<Var<double>>& params, LossOf loss_of,
              Batch batch, int steps, Options opt, bool distributed, const dist::Communicator& comm,
              bool overlap = false) {
  ga::AdamW<double> adam(params, {.lr = 1e-2, .weight_decay = 0.01});
  // Overlapped: buckets of 40 elements, so that even these small models have several.
  dist::GradientAllreduce<double> reduce(params, comm, overlap ? 40 : 1 << 15);
  ga::Generator data_gen(11), proj(12);
  Trained t;
  for (int s = 0; s < steps; ++s) {
    auto [x, labels] = batch(data_gen);
    std::pair<Var<double>, Var<double>> lp;
    if (distributed) {
      const dist::Shard sh = dist::shard_of(x.shape()[0], comm.rank(), comm.size());
      opt.global_batch = sh.global;
      opt.global_offset = sh.offset;
      lp = loss_of(model, dist::shard_rows(x, sh), dist::shard_rows(labels, sh), proj, opt,
                   double(sh.rows) / double(sh.global));
    } else {
      lp = loss_of(model, x, labels, proj, opt, 1.0);
    }
    adam.zero_grad();
    if (overlap) {
      reduce.begin();
      ga::backward_reporting(lp.first, std::span<const Var<double>>(params), reduce);
      reduce.finish();
    } else {
      lp.first.backward(params);
      if (distributed) reduce();
    }
    adam.step();
    t.losses.push_back(distributed ? comm.sum(lp.first.item()) : lp.first.item());
    t.penalties.push_back(distributed ? comm.sum(lp.second.item()) : lp.second.item());
  }
  return t;
}

// Trains make(seed)'s model as one process on the global batch and data-parallel, and
// compares the weights, the per-step global loss and penalty, and the ranks' weights.
// (Options defaults to PenaltyOptions, so that a braced list of its fields names them.)
template <class Make, class LossOf, class Batch, class Options = Opts>
void compare(const std::string& name, Make make, LossOf loss_of, Batch batch, const Options& opt,
             const dist::Communicator& comm) {
  constexpr int kSteps = 6;
  auto ref_model = make(7);
  auto dp_model = make(7 + 100 * static_cast<std::uint64_t>(comm.rank()));  // differs per rank
  const auto ref_params = ref_model.parameters(), dp_params = dp_model.parameters();
  dist::broadcast_parameters(dp_params, comm);  // ... until rank 0's weights are broadcast
  check(comm, name + ": weights after broadcast", max_abs_diff(dp_params, ref_params), 0.0);
  const Trained ref = train(ref_model, ref_params, loss_of, batch, kSteps, opt, false, comm);
  const Trained dp = train(dp_model, dp_params, loss_of, batch, kSteps, opt, true, comm);
  check(comm, name + ": weights after " + std::to_string(kSteps) + " steps vs one process",
        max_abs_diff(dp_params, ref_params), 1e-12);
  check(comm, name + ": global loss per step vs one process", max_rel_diff(dp.losses, ref.losses),
        1e-12);
  check(comm, name + ": global penalty per step vs one process",
        max_rel_diff(dp.penalties, ref.penalties), 1e-12);
  check(comm, name + ": weights differ between ranks",
        dist::max_parameter_divergence(dp_params, comm), 0.0);
  // The allreduce overlapped with the backward pass (bucket by bucket, as each bucket's
  // gradients become final): the same sums, so with 2 ranks the same weights bit for bit.
  auto ov_model = make(7 + 100 * static_cast<std::uint64_t>(comm.rank()));
  const auto ov_params = ov_model.parameters();
  dist::broadcast_parameters(ov_params, comm);
  const Trained ov = train(ov_model, ov_params, loss_of, batch, kSteps, opt, true, comm, true);
  check(comm, name + ": overlapped allreduce vs one process", max_abs_diff(ov_params, ref_params),
        1e-12);
  if (comm.size() == 2)
    check(comm, name + ": overlapped allreduce vs after the backward (2 ranks: bit for bit)",
          max_abs_diff(ov_params, dp_params), 0.0);
  double moved = 0;  // the comparison means nothing if training did not move the weights
  auto init = make(7);
  moved = max_abs_diff(init.parameters(), ref_params);
  if (comm.is_root() && !(moved > 1e-3)) {
    std::printf("FAIL %s: the weights barely moved (%.3g)\n", name.c_str(), moved);
    ++failures;
  }
}

void run_all(const dist::Communicator& comm) {
  // The shards tile the batch in rank order, sizes differing by at most one.
  {
    double bad = 0;
    for (index_t G : {0, 1, 5, 7, 12, 256})
      for (int n : {1, 2, 3, 5}) {
        index_t next = 0;
        for (int r = 0; r < n; ++r) {
          const dist::Shard s = dist::shard_of(G, r, n);
          if (s.offset != next || s.rows < G / n || s.rows > G / n + 1) bad = 1;
          next += s.rows;
        }
        if (next != G) bad = 1;
      }
    check(comm, "shards tile the batch", bad, 0.0);
  }
  // Communicator::local(): this rank alone, every collective the identity (no MPI call), so
  // each rank keeps its own value, from two threads at once.
  {
    std::atomic<int> bad{0};
    auto alone = [&](double mine) {
      const dist::Communicator self = dist::Communicator::local();
      double v[2] = {mine, -mine};
      self.allreduce(v, 2);
      self.broadcast(v, 2, 0);
      self.barrier();
      if (self.rank() != 0 || self.size() != 1 || !self.is_local() || v[0] != mine ||
          v[1] != -mine || self.sum(mine) != mine || self.max(mine) != mine)
        bad = 1;
    };
    std::thread other(alone, 2.0 * comm.rank() + 1);
    alone(2.0 * comm.rank() + 2);
    other.join();
    check(comm, "Communicator::local() is this rank alone", bad.load(), 0.0);
  }

  // The paper's MLP shape in miniature (bias-free ReLU, depth 4) plus a biased one.
  constexpr index_t kIn = 10, kClasses = 4, kGlobal = 13;  // 13: shards of unequal size
  auto mlp = [](bool bias) {
    return [bias](std::uint64_t seed) {
      ga::Generator g(seed);
      return ga::nn::make_mlp<double>(kIn, 8, 4, kClasses, bias, g);
    };
  };
  auto digits = [](ga::Generator& g) {
    Tensor<double> x = ga::randn<double>(ga::Shape{kGlobal, kIn}, g);
    std::vector<index_t> y(kGlobal);
    for (auto& v : y) v = static_cast<index_t>(g.below(kClasses));
    return std::pair{x, ga::Indices(std::move(y))};
  };
  // CE + 0.1 * GrokAlign from the output already computed (the training programs' form).
  auto penalty_from = [](const auto& model, const Tensor<double>& x, const ga::Indices& y,
                         ga::Generator& proj, const Opts& opt, double share) {
    const Var<double> xv(x, true);
    const Var<double> out = model(xv);
    const Var<double> pen = ga::align::grokalign_penalty_from(out, xv, proj, opt);
    return std::pair{ga::cross_entropy(out, y) * share + pen * 0.1, pen};
  };
  // MSE + 0.1 * GrokAlign by forward mode (input projections), through the model itself.
  auto penalty_of_model = [](const auto& model, const Tensor<double>& x, const ga::Indices& y,
                             ga::Generator& proj, const Opts& opt, double share) {
    const Var<double> out = model(Var<double>(x));
    const Var<double> pen = ga::align::grokalign_penalty(model, x, proj, opt);
    return std::pair{ga::mse(out, ga::one_hot<double>(y, kClasses)) * share + pen * 0.1, pen};
  };
  using ga::align::Estimator;
  using ga::align::FirstProduct;
  using ga::align::PenaltyForm;
  compare("mlp, 1 output projection, direct J^T v", mlp(false), penalty_from, digits,
          {.first_product = FirstProduct::kDirect}, comm);
  compare("mlp with bias, 2 output projections, Gram", mlp(true), penalty_from, digits,
          {.projections = 2, .first_product = FirstProduct::kGram}, comm);
  compare("mlp, exact, half squared norm", mlp(false), penalty_from, digits,
          {.estimator = Estimator::kExact, .form = PenaltyForm::kHalfSquaredNorm}, comm);
  compare("mlp, 3 input projections (forward mode)", mlp(false), penalty_of_model, digits,
          {.estimator = Estimator::kInputProjections, .projections = 3}, comm);

  // The alignment penalties (centroid and Jacobian alignment), weighted 0.1 like GrokAlign's.
  auto centroid_from = [](const auto& model, const Tensor<double>& x, const ga::Indices& y,
                          ga::Generator&, const AlignOpts& opt, double share) {
    const Var<double> xv(x, true);
    const Var<double> out = model(xv);
    const Var<double> pen = ga::align::centroid_alignment_penalty_from(out, xv, opt);
    return std::pair{ga::cross_entropy(out, y) * share + pen * 0.1, pen};
  };
  auto jacobian_from = [](const auto& model, const Tensor<double>& x, const ga::Indices& y,
                          ga::Generator& proj, const AlignOpts& opt, double share) {
    const Var<double> xv(x, true);
    const Var<double> out = model(xv);
    const Var<double> pen = ga::align::jacobian_alignment_penalty_from(out, xv, proj, opt);
    return std::pair{ga::cross_entropy(out, y) * share + pen * 0.1, pen};
  };
  auto jacobian_of_model = [](const auto& model, const Tensor<double>& x, const ga::Indices& y,
                              ga::Generator& proj, const AlignOpts& opt, double share) {
    const Var<double> out = model(Var<double>(x));
    const Var<double> pen = ga::align::jacobian_alignment_penalty(model, x, proj, opt);
    return std::pair{ga::mse(out, ga::one_hot<double>(y, kClasses)) * share + pen * 0.1, pen};
  };
  compare("mlp, centroid alignment", mlp(false), centroid_from, digits, AlignOpts{}, comm);
  compare("mlp with bias, centroid alignment squared", mlp(true), centroid_from, digits,
          AlignOpts{.squared = true}, comm);
  compare("mlp, Jacobian alignment, 1 output projection", mlp(false), jacobian_from, digits,
          AlignOpts{}, comm);
  compare("mlp, Jacobian alignment squared, exact", mlp(false), jacobian_from, digits,
          AlignOpts{.squared = true, .estimator = Estimator::kExact}, comm);
  compare("mlp, Jacobian alignment, 2 output projections (forward-mode J x)", mlp(false),
          jacobian_of_model, digits, AlignOpts{.projections = 2}, comm);
  compare("mlp, Jacobian alignment, 2 input projections", mlp(false), jacobian_of_model, digits,
          AlignOpts{.estimator = Estimator::kInputProjections, .projections = 2}, comm);

  // The modular-addition transformer (tests/align/tiny_transformer.hpp's size), the penalty
  // on its embedded-tokens -> last-position-logits map. W_E gets no gradient (the inputs are
  // embedded outside the graph): it must stay without one on every rank, so AdamW skips it.
  constexpr index_t kP = 5, kSequences = 7;
  const ga::nn::TransformerConfig config{
      .p = kP, .d_model = 6, .n_heads = 2, .d_head = 3, .d_mlp = 8, .n_ctx = 3};
  auto transformer = [&](std::uint64_t seed) {
    ga::Generator g(seed);
    return ga::nn::make_transformer<double>(config, g);
  };
  auto transformer_batch = [&](ga::Generator& g) {
    // Embedded with the reference initial W_E: every model here shares it (seed 7), and
    // W_E is not trained, so the embedded batch is the same for both runs.
    static const auto embedder = transformer(7);
    std::vector<index_t> tokens, y;
    for (index_t i = 0; i < kSequences; ++i) {
      const index_t a = static_cast<index_t>(g.below(kP)), b = static_cast<index_t>(g.below(kP));
      tokens.insert(tokens.end(), {a, b, kP});
      y.push_back((a + b) % kP);
    }
    Tensor<double> e = embedder.template embed<Tensor<double>>(
        ga::Indices(std::move(tokens), ga::Shape{kSequences, 3}));
    return std::pair{e, ga::Indices(std::move(y))};
  };
  auto transformer_loss = [](const auto& model, const Tensor<double>& e, const ga::Indices& y,
                             ga::Generator& proj, const Opts& opt, double share) {
    const Var<double> ev(e, true);
    const Var<double> out = model.from_embedding(ev);
    const Var<double> pen = ga::align::grokalign_penalty_from(out, ev, proj, opt);
    return std::pair{ga::cross_entropy(out, y) * share + pen * 0.1, pen};
  };
  compare("transformer, 1 output projection", transformer, transformer_loss, transformer_batch,
          Opts{}, comm);
}

}  // namespace

int main(int argc, char** argv) {
  dist::Environment env(&argc, &argv);
  const dist::Communicator comm = env.world();
  try {
    run_all(comm);
  } catch (const std::exception& e) {
    comm.abort(std::string("data_parallel: ") + e.what());
  }
  const int failed = static_cast<int>(comm.max(failures));
  if (comm.is_root())
    std::printf("%s: %d check(s) failed on %d rank(s)\n", failed ? "FAILED" : "passed", failed,
                comm.size());
  return failed ? 1 : 0;
}
