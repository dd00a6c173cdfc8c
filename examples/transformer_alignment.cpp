// transformer_alignment: GrokAlign Sec 4.3, Figs 7-8. A one-layer transformer learns
// (a + b) mod 113 from 30% of the pairs; we follow the centroid alignment of the map from
// token embeddings to last-position logits, and how concentrated in frequency the learned
// solution is (Gini of the Fourier-norm profiles of W_E and of W_U^T W_out), with and
// without the GrokAlign penalty on that map.
//
// Recipe (SPEC section 3; `--preset paper` is exactly this):
//   data       data::make_modular_addition(113, 0.3): tokens (a, b, =), label (a + b) mod 113
//   model      nn::make_transformer: d_vocab 114, d_model 128, 4 heads of 32, ReLU MLP 512,
//              3 learned positions, no LayerNorm (--fixed_embedding freezes W_E)
//   loss       cross-entropy on the last position's logits, full batch
//   penalty    lambda_jac * GrokAlign of from_embedding (embedded tokens -> last-position
//              logits), taken with respect to the embedded tokens
//   optimiser  AdamW lr 1e-3, wd 1.0, betas (0.9, 0.98)
//   logged     at log-spaced steps: train loss/accuracy, test accuracy, centroid alignment
//              min/mean/max of from_embedding over the training inputs, Gini of W_E's and
//              of W_U^T W_out's Fourier-norm profiles, the number of key frequencies of W_E
//              (those above half the largest norm); the key frequencies themselves, strongest
//              first, go to frequencies.csv beside stats.csv
//
// Sizes. The paper's run is 48000 full-batch steps on 3830 sequences at lr 1e-3 (7-14
// hours here in float64). Measured in float32 (the authors' dtype), one thread: ~0.09 s per
// plain step and ~0.2 s per GrokAlign step.
//   cpu (default)  the paper's task, model, weight decay and betas, float32, with lr 3e-3
//                  and 3000 steps, logging every 50 steps. What it holds fixed is the clock
//                  of grokking under AdamW: both the Adam step and the decoupled decay
//                  (theta *= 1 - lr wd) scale with lr, so the time to the weight-decay-driven
//                  generalisation goes as 1 / (lr wd) in steps (Nanda et al. 2023, "Progress
//                  measures for grokking": ~9.4k-13.3k steps at lr 1e-3, wd 1; Liu et al.
//                  2022, "Omnigrok", on weight decay as the clock). 3x the lr at the same wd
//                  brings the jump to ~2k steps, so 3000 steps take ~5 minutes (~11 with
//                  GrokAlign). `--lr 1e-3 --steps 8000` is the check that the rescaling holds.
//   paper          48000 steps at lr 1e-3, 48 log-spaced logs, float32 (as the authors')
// --smoke: p = 13, d_model 16, 2 heads of 8, d_mlp 32, 20 steps.
// Under mpirun -np N: data-parallel, each rank takes a block of the training pairs (the
// penalty's projections keyed by global pair index) and, at a logged step, a block of each
// set to evaluate; rank 0 alone writes; the same numbers to rounding.
#include <grokalign/distributed/data_parallel.hpp>
#include <grokalign/grokalign.hpp>
#include <grokalign/metrics.hpp>
#include <grokalign/run.hpp>
#include <grokalign/run/schedule.hpp>
#include <grokalign/run/training_state.hpp>

#include <cstdint>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>

using namespace grokalign;

struct Settings {
  double lambda_jac = 0.0;
  double lr = 1e-3;
  double weight_decay = 1.0;
  double beta1 = 0.9;
  double beta2 = 0.98;
  std::int64_t steps = 48000;
  bool fixed_embedding = false;
  double init_scale = 1.0;
  std::int64_t p = 113;
  double train_fraction = 0.3;
  std::int64_t d_model = 128;
  std::int64_t n_heads = 4;
  std::int64_t d_head = 32;
  std::int64_t d_mlp = 512;
  std::int64_t n_logs = 48;
  std::int64_t log_every = 0;          // > 0: log every this many steps instead of log-spaced
  std::int64_t alignment_samples = 0;  // 0: every training input
  double key_fraction = 0.5;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Settings, lambda_jac, lr, weight_decay, beta1, beta2, steps,
                                   fixed_embedding, init_scale, p, train_fraction, d_model, n_heads,
                                   d_head, d_mlp, n_logs, log_every, alignment_samples,
                                   key_fraction)

Settings preset(const std::string& name) {
  Settings s;  // the paper's
  if (name == "smoke") {
    s.p = 13;
    s.d_model = 16;
    s.n_heads = 2;
    s.d_head = 8;
    s.d_mlp = 32;
    s.steps = 20;
    s.n_logs = 5;
  } else if (name != "paper") {  // cpu: the grokking clock lr x wd x steps kept (see the top)
    s.lr = 3e-3;
    s.steps = 3000;
    s.log_every = 50;
  }
  return s;
}

// frequencies.csv: one row per logged step, the key frequencies of each profile as
// space-separated lists. A resumed run keeps the rows up to its checkpoint, like stats.csv.
class FrequencyLog {
 public:
  FrequencyLog(const std::filesystem::path& path, std::int64_t resumed_at) : path_(path) {
    std::string kept = "step,key_frequencies_embedding,key_frequencies_unembed_mlp\n";
    if (resumed_at >= 0) {
      std::ifstream in(path);
      std::string line;
      std::getline(in, line);
      while (std::getline(in, line))
        if (std::stoll(line.substr(0, line.find(','))) <= resumed_at) kept += line + "\n";
    }
    std::ofstream(path, std::ios::trunc) << kept;
  }
  void write(std::int64_t step, const std::vector<index_t>& embedding,
             const std::vector<index_t>& unembed) {
    std::ofstream(path_, std::ios::app)
        << fmt::format("{},{},{}\n", step, fmt::join(embedding, " "), fmt::join(unembed, " "));
  }

 private:
  std::filesystem::path path_;
};

template <Scalar T>
int train(const Settings& s, const run::CommonOptions& common) {
  Generator data_gen(common.seed), init_gen(common.seed + 1), proj_gen(common.seed + 2);
  const ModularAddition task = make_modular_addition(s.p, s.train_fraction, data_gen);
  const Indices train_tokens(task.train_tokens, Shape{task.train_size(), 3});
  const Indices test_tokens(task.test_tokens, Shape{task.test_size(), 3});
  const Indices train_labels(task.train_labels), test_labels(task.test_labels);

  run::RunSpec spec;
  spec.program = "transformer_alignment";
  spec.settings = s;
  spec.data = {{"name", "modular-addition"},
               {"p", s.p},
               {"train", task.train_size()},
               {"test", task.test_size()}};
  spec.columns = {"step",
                  "train_loss",
                  "train_accuracy",
                  "test_accuracy",
                  "alignment_min",
                  "alignment_mean",
                  "alignment_max",
                  "gini_embedding",
                  "gini_unembed_mlp",
                  "key_frequencies_embedding"};
  spec.resumable_settings = {"steps"};
  spec.total_steps = s.steps;
  run::Run r(common, spec, run::default_out_dir("transformer_alignment"));
  std::optional<FrequencyLog> freq_log;  // rank 0's file alone under mpirun
  if (r.writes()) freq_log.emplace(r.dir() / "frequencies.csv", r.resumed() ? r.start_step() : -1);

  nn::TransformerConfig config{.p = s.p,
                               .d_model = s.d_model,
                               .n_heads = s.n_heads,
                               .d_head = s.d_head,
                               .d_mlp = s.d_mlp,
                               .n_ctx = 3,
                               .freeze_embedding = s.fixed_embedding};
  auto model = nn::make_transformer<T>(config, init_gen);
  if (s.init_scale != 1.0) nn::scale_parameters(model, s.init_scale);
  AdamW<T> opt(model.trainable_parameters(),
               {.lr = s.lr, .beta1 = s.beta1, .beta2 = s.beta2, .weight_decay = s.weight_decay});
  run::TrainingState<T, AdamW<T>> state(model.named_parameters(), opt, {{"proj", &proj_gen}});
  const auto schedule = s.log_every > 0 ? run::LogSchedule::every(s.steps, s.log_every)
                                        : run::LogSchedule::log_spaced(s.steps, s.n_logs);
  if (r.resumed()) state.restore(r.checkpoint());
  distributed::DataParallel<T> dp(opt.parameters());  // under mpirun: data-parallel steps
  const auto named = model.named_parameters();
  auto from_embedding = [&](const auto& e) { return model.from_embedding(e); };

  const index_t n_align = s.alignment_samples > 0
                              ? std::min<index_t>(s.alignment_samples, task.train_size())
                              : task.train_size();
  // Under mpirun each rank evaluates its block of each set (training pairs, test pairs, the
  // alignment's inputs): every per-sample mean, weighted by its block's share, is summed over
  // the ranks in one allreduce, and the alignment's extremes in one max-reduction (of -min and
  // max). One process evaluates everything, as before. The weight-only figures (Fourier
  // profiles, Gini, key frequencies) are cheap and alike on every rank.
  auto log_row = [&](std::int64_t step) {
    const auto train = dp.shard(task.train_size()), test = dp.shard(task.test_size()),
               aligned = dp.shard(n_align);
    const Tensor<T> e_train = model.template embed<Tensor<T>>(train_tokens);  // a lookup: cheap
    double means[4] = {0, 0, 0, 0};  // train loss, train accuracy, test accuracy, alignment
    double extremes[2] = {-std::numeric_limits<double>::infinity(),  // -min alignment
                          -std::numeric_limits<double>::infinity()};
    if (train.rows) {
      const Tensor<T> train_logits = model.from_embedding(dp.rows(e_train, train));
      const auto labels = dp.rows(train_labels, train);
      means[0] =
          dp.share_of(static_cast<double>(cross_entropy(train_logits, labels).item()), train);
      means[1] = dp.share_of(metrics::argmax_accuracy(train_logits, labels), train);
    }
    if (test.rows) {
      const Tensor<T> test_logits =
          model.from_embedding(model.template embed<Tensor<T>>(dp.rows(test_tokens, test)));
      means[2] =
          dp.share_of(metrics::argmax_accuracy(test_logits, dp.rows(test_labels, test)), test);
    }
    if (aligned.rows) {
      const auto c =
          align::centroids<T>(from_embedding, dp.rows(e_train.rows(0, n_align), aligned));
      means[3] = dp.share_of(static_cast<double>(c.alignment.array().mean()), aligned);
      extremes[0] = -static_cast<double>(c.alignment.array().minCoeff());
      extremes[1] = static_cast<double>(c.alignment.array().maxCoeff());
    }
    dp.sum(means, 4);
    if (dp.parallel()) dp.communicator().allreduce(extremes, 2, distributed::ReduceOp::kMax);
    const auto [train_loss, train_acc, test_acc, mean] = means;
    const Tensor<T> W_E = model.embedding().W_E().value();
    const Tensor<T> emb_profile = metrics::embedding_fourier_norms(W_E, s.p);
    const Tensor<T> mlp_profile = metrics::unembed_fourier_norms(
        model.unembedding().W_U().value(), model.block(0).mlp().W_out().value(), s.p);
    const auto emb_keys = metrics::key_frequencies(emb_profile, s.key_fraction);
    const auto mlp_keys = metrics::key_frequencies(mlp_profile, s.key_fraction);
    r.log({static_cast<double>(step), train_loss, train_acc, test_acc, -extremes[0], mean,
           extremes[1], metrics::gini(emb_profile), metrics::gini(mlp_profile),
           static_cast<double>(emb_keys.size())});
    if (freq_log) freq_log->write(step, emb_keys, mlp_keys);
    r.progress().update(
        step, {{"loss", train_loss}, {"train", train_acc}, {"test", test_acc}, {"align", mean}});
  };

  auto checkpoint = [&](std::int64_t step) {
    if (!run::checkpoint_now(common, step, schedule.logs(step))) return;
    run::Checkpoint c = state.snapshot();
    r.save_checkpoint(c, step);
  };
  if (!r.resumed()) {
    log_row(0);
    checkpoint(0);
  }
  for (std::int64_t step = r.start_step() + 1; step <= s.steps; ++step) {
    // The embedded tokens are the input of the penalty's map; with a frozen embedding they
    // do not require grad by themselves, so they become a leaf that does.
    // Under mpirun: this rank's block of the training pairs, its share of the loss.
    const auto shard = dp.shard(task.train_size());
    Var<T> e = model.embed(dp.rows(train_tokens, shard));
    if (s.lambda_jac > 0 && !e.requires_grad()) e = Var<T>(e.value(), true);
    const Var<T> logits = model.from_embedding(e);
    Var<T> loss = dp.share_of(cross_entropy(logits, dp.rows(train_labels, shard)), shard);
    if (s.lambda_jac > 0)
      loss = loss + align::grokalign_penalty_from(logits, e, proj_gen, dp.penalty_options(shard)) *
                        static_cast<T>(s.lambda_jac);
    opt.zero_grad(true);
    loss.backward(opt.parameters());
    dp.reduce_gradients();
    const double global_loss = dp.sum(static_cast<double>(loss.item()));  // every rank alike
    if (common.nan_guard) {
      run::check_finite_loss(step, "loss", global_loss);
      run::check_finite_gradients(step, named);
    }
    opt.step();
    if (schedule.logs(step))
      log_row(step);
    else
      r.progress().update(step, {{"loss", global_loss}});
    checkpoint(step);
  }
  r.progress().finish();
  fmt::print("wrote {} (stats.csv, frequencies.csv)\n", r.dir().string());
  return 0;
}

int main(int argc, char** argv) {
  return run::guarded_main([&] {
    CLI::App app(
        "GrokAlign Sec 4.3 (Figs 7-8): centroid alignment and Fourier sparsity of a "
        "modular-addition transformer, with and without the GrokAlign penalty");
    run::CommonOptions common;
    run::add_common_flags(app, common, {.dtype = "f32", .program = "transformer_alignment"});
    Settings s = preset("cpu");  // so --help shows the default size
    run::SettingsFlags<Settings> flags(app, s);
    flags.add("--lambda_jac", &Settings::lambda_jac,
              "Weight of the GrokAlign penalty on the embedding-to-logits map (0: off)");
    flags.add("--lr", &Settings::lr, "AdamW learning rate");
    flags.add("--weight_decay", &Settings::weight_decay, "AdamW weight decay");
    flags.add("--beta1", &Settings::beta1, "AdamW beta1");
    flags.add("--beta2", &Settings::beta2, "AdamW beta2");
    flags.add("--steps", &Settings::steps, "Full-batch training steps");
    flags.add("--fixed_embedding", &Settings::fixed_embedding, "Freeze the embedding W_E");
    flags.add("--init_scale", &Settings::init_scale, "Multiply every initial parameter by this");
    flags.add("--p", &Settings::p, "Modulus (tokens 0..p-1 and '=')");
    flags.add("--train_fraction", &Settings::train_fraction, "Share of the p^2 pairs trained on");
    flags.add("--d_model", &Settings::d_model, "Residual width");
    flags.add("--n_heads", &Settings::n_heads, "Attention heads");
    flags.add("--d_head", &Settings::d_head, "Width of each head");
    flags.add("--d_mlp", &Settings::d_mlp, "MLP width");
    flags.add("--n_logs", &Settings::n_logs, "Log-spaced logging points");
    flags.add("--log_every", &Settings::log_every,
              "Log every this many steps instead (0: the log-spaced --n_logs)");
    flags.add("--alignment_samples", &Settings::alignment_samples,
              "Training inputs the alignment is taken over (0: all)");
    flags.add("--key_fraction", &Settings::key_fraction,
              "A key frequency's norm exceeds this fraction of the largest");
    if (int rc = run::parse_flags(app, argc, argv, &common); rc >= 0) return rc;
    flags.apply(preset(common.smoke ? "smoke" : common.preset), common);
    run::require_nonnegative("--lambda_jac", s.lambda_jac);
    run::require_positive("--lr", s.lr);
    run::require_nonnegative("--weight_decay", s.weight_decay);
    run::require_flag(s.beta1 >= 0 && s.beta1 < 1, "--beta1", "in [0, 1)", s.beta1);
    run::require_flag(s.beta2 >= 0 && s.beta2 < 1, "--beta2", "in [0, 1)", s.beta2);
    run::require_positive("--steps", static_cast<double>(s.steps));
    run::require_positive("--init_scale", s.init_scale);
    run::require_flag(s.p >= 3 && s.p % 2 == 1, "--p", "an odd integer >= 3",
                      static_cast<double>(s.p));
    run::require_flag(s.train_fraction > 0 && s.train_fraction < 1, "--train_fraction", "in (0, 1)",
                      s.train_fraction);
    for (auto [flag, v] : {std::pair{"--d_model", s.d_model},
                           {"--n_heads", s.n_heads},
                           {"--d_head", s.d_head},
                           {"--d_mlp", s.d_mlp}})
      run::require_positive(flag, static_cast<double>(v));
    run::require_nonnegative("--n_logs", static_cast<double>(s.n_logs));
    run::require_nonnegative("--log_every", static_cast<double>(s.log_every));
    run::require_nonnegative("--alignment_samples", static_cast<double>(s.alignment_samples));
    run::require_flag(s.key_fraction > 0 && s.key_fraction <= 1, "--key_fraction", "in (0, 1]",
                      s.key_fraction);
    return run::with_dtype(common.dtype, [&]<class T>() { return train<T>(s, common); });
  });
}
