// accelerating_grokking: how many epochs, and how many seconds of optimisation, until an
// MNIST MLP that memorised its training set generalises (test accuracy > 85%), with weight
// decay alone and with the accelerators (paper Sec 4.3, table; ../shared/SPEC.md sec 3).
//
// The recipe: the first 1024 training and first 1024 test digits, normalised and flattened
// to 784; a bias-free ReLU MLP 784-196-196-196-10 with PyTorch's default initialisation and
// then every parameter multiplied by 8 (the large initialisation that delays generalisation);
// AdamW lr 1e-3, weight decay 0.01, batches of 256 reshuffled each epoch; accuracies every
// 10 epochs, stopping once the test accuracy exceeds 0.85 (cap 100000 epochs). Variants:
//   baseline       MSE on one-hot targets (the reference)
//   baseline_ce    cross-entropy (the fair control for GrokAlign CE; the reference lacks it)
//   grokalign_ce   CE + 1e-3 * GrokAlign penalty (Jacobian norm, one random projection)
//   grokalign_mse  MSE + 1e-4 * GrokAlign penalty
//   centroid_align_ce, centroid_align_mse
//                  CE or MSE + lambda_align (100) * mean_b (1 - A_b): trained on centroid
//                  alignment
//   jacobian_align_ce, jacobian_align_mse
//                  CE or MSE + lambda_align (1000) * mean_b (1 - JA_b): trained on Jacobian
//                  alignment (|J x|^2 / (|x|^2 |J|_F^2), one random projection)
//   grokfast       MSE, gradients filtered by Grokfast EMA (alpha 0.8, lamb 0.1)
//   noise          MSE on inputs plus N(0, sigma^2), sigma = max(0.06 (1 - train acc), 0.03)
//   custom         --loss_fn, --lambda_jac, --grokfast, --adv_training as given
// Every variant logs centroid alignment and Jacobian alignment (exact) on the first 256 test
// digits. --lambda_align takes a list (e.g. 0.01,0.1,1): each alignment variant then runs
// once per value, as <variant>_l<value>.
// Sizes: --preset paper is the reference; cpu (the default) is the same recipe (it already fits a
// 2-core CPU: GrokAlign CE groks in 2240, 2430, 2450 epochs at seeds 0-2, ~165 s of one
// core's CPU time each; the reference: 2340, its CE baseline 14000); --smoke is 128/128
// digits for 30 epochs. --seeds N runs seeds seed..seed+N-1, --jobs J runs J at a time, each
// in OUT/<variant>/seed<k>/; OUT/summary.md and summary.csv hold the table.
// Under mpirun -np N (built with MPI: grokalign::distributed) every run is data-parallel: each
// rank trains on its rows of every batch, one allreduce of the gradients a step, and
// evaluates its block of each set; the runs one after another; rank 0 alone writes OUT and
// prints (docs/scaling.md); --resume works with any number of ranks (checkpoints do not
// depend on it); every variant runs data-parallel, but not with --jobs > 1. A sweep of at
// least as many runs as ranks instead gives each rank whole runs (--jobs at a time, the next
// run to whichever rank is free), each rank writing its runs' folders, rank 0 the summary;
// --mpi_mode runs|data|auto chooses.
#include <grokalign/align.hpp>
#include <grokalign/data.hpp>
#include <grokalign/distributed.hpp>
#include <grokalign/metrics.hpp>
#include <grokalign/nn.hpp>
#include <grokalign/optim.hpp>
#include <grokalign/run.hpp>
#include <grokalign/run/sweep.hpp>

#include <time.h>
#include <unistd.h>

#include <cstdio>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <optional>

namespace ga = grokalign;
using namespace grokalign;

struct Settings {
  std::int64_t n_train = 1024, n_test = 1024;
  int depth = 4;
  std::int64_t width = 196;
  bool bias = false;
  double init_scale = 8.0;
  double lr = 1e-3, weight_decay = 0.01;
  std::int64_t batch_size = 256;
  std::int64_t log_every = 10, max_epochs = 100000;
  double target = 0.85;
  double lambda_jac_ce = 1e-3, lambda_jac_mse = 1e-4;  // the GrokAlign variants' weights
  // The alignment variants' weights: the best of a sweep over decades on these digits with
  // CE (docs/reproduction.md), not tuned for MSE.
  double lambda_centroid = 100, lambda_jacobian = 1000;
  double grokfast_alpha = 0.8, grokfast_lamb = 0.1;
  double noise_max = 0.06, noise_min = 0.03;  // sigma = max(noise_max (1 - acc), noise_min)
  std::int64_t centroid_samples = 256;        // test digits for the logged alignment
};
// With defaults: a sweep.json written before a field existed still resumes.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Settings, n_train, n_test, depth, width, bias,
                                                init_scale, lr, weight_decay, batch_size, log_every,
                                                max_epochs, target, lambda_jac_ce, lambda_jac_mse,
                                                lambda_centroid, lambda_jacobian, grokfast_alpha,
                                                grokfast_lamb, noise_max, noise_min,
                                                centroid_samples)

Settings preset(const std::string& name, bool smoke) {
  Settings s;  // "paper" and "cpu" are the same recipe (see the header)
  (void)name;
  if (smoke) {
    s.n_train = s.n_test = 128;
    s.max_epochs = 30;
  }
  return s;
}

// What distinguishes one variant's runs from another's.
struct Variant {
  std::string name, loss_fn = "mse";
  double lambda_jac = 0;
  bool grokfast = false, adv_training = false;
  std::string align = "none";  // "centroid" or "jacobian": trained on that alignment
  double lambda_align = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Variant, name, loss_fn, lambda_jac, grokfast,
                                                adv_training, align, lambda_align)

const std::vector<std::string> kVariants = {"baseline",          "baseline_ce",
                                            "grokalign_ce",      "grokalign_mse",
                                            "centroid_align_ce", "centroid_align_mse",
                                            "jacobian_align_ce", "jacobian_align_mse",
                                            "grokfast",          "noise"};
const std::string kDefaultVariants =
    "baseline,baseline_ce,grokalign_ce,grokalign_mse,grokfast,noise";

// The variants a name stands for: one, or for an alignment variant one per --lambda_align
// value when several are given (named <name>_l<value>, so each gets its own row and folder).
std::vector<Variant> variants(const std::string& name, const Settings& s,
                              std::optional<double> lambda_jac,
                              const std::vector<double>& lambda_align, const Variant& custom) {
  const auto aligned = [&](const char* align, const char* loss, double fallback) {
    if (lambda_align.empty())
      return std::vector<Variant>{{name, loss, 0, false, false, align, fallback}};
    std::vector<Variant> out;
    for (double l : lambda_align)
      out.push_back({lambda_align.size() == 1 ? name : fmt::format("{}_l{:g}", name, l), loss, 0,
                     false, false, align, l});
    return out;
  };
  if (name == "baseline") return {{name, "mse"}};
  if (name == "baseline_ce") return {{name, "ce"}};
  if (name == "grokalign_ce") return {{name, "ce", lambda_jac.value_or(s.lambda_jac_ce)}};
  if (name == "grokalign_mse") return {{name, "mse", lambda_jac.value_or(s.lambda_jac_mse)}};
  if (name == "centroid_align_ce") return aligned("centroid", "ce", s.lambda_centroid);
  if (name == "centroid_align_mse") return aligned("centroid", "mse", s.lambda_centroid);
  if (name == "jacobian_align_ce") return aligned("jacobian", "ce", s.lambda_jacobian);
  if (name == "jacobian_align_mse") return aligned("jacobian", "mse", s.lambda_jacobian);
  if (name == "grokfast") return {{name, "mse", 0, true}};
  if (name == "noise") return {{name, "mse", 0, false, true}};
  if (name == "custom")
    return {{name, custom.loss_fn, lambda_jac.value_or(0), custom.grokfast, custom.adv_training}};
  throw run::FlagError("--variants", fmt::format("unknown variant '{}'; choose from {}, custom",
                                                 name, fmt::join(kVariants, ", ")));
}

template <Scalar T>
struct Digits {
  Tensor<T> x_train, x_test;  // [N, 784], normalised
  std::vector<index_t> y_train, y_test;
  Tensor<T> t_train, t_test;  // one-hot [N, 10]
  std::string source;
  Digits clone() const {
    return {x_train.clone(), x_test.clone(), y_train, y_test,
            t_train.clone(), t_test.clone(), source};
  }
};

template <Scalar T>
Digits<T> load_digits(const Settings& s, const std::string& data_dir) {
  const auto dir = resolve_data_dir(data_dir);
  const auto train = load_dataset<T>("mnist", Split::kTrain, dir, s.n_train);
  const auto test = load_dataset<T>("mnist", Split::kTest, dir, s.n_test);
  return {flatten_images(normalize_mnist(train.images)).clone(),
          flatten_images(normalize_mnist(test.images)).clone(),
          train.labels,
          test.labels,
          one_hot<T>(Indices(train.labels), 10),
          one_hot<T>(Indices(test.labels), 10),
          train.source + "; " + test.source};
}

// The data loss of outputs against one-hot targets, values only (for the log).
template <Scalar T>
double data_loss(const Tensor<T>& out, const Tensor<T>& onehot, bool ce) {
  const auto o = out.matrix().template cast<double>().eval();
  const auto t = onehot.matrix().template cast<double>().eval();
  if (!ce) return (o - t).array().square().mean();
  double sum = 0;
  for (Eigen::Index i = 0; i < o.rows(); ++i) {
    const double m = o.row(i).maxCoeff();
    const double lse = m + std::log((o.row(i).array() - m).exp().sum());
    sum += lse - o.row(i).dot(t.row(i));
  }
  return sum / static_cast<double>(o.rows());
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// One run: a variant at one seed, in its own folder, resumable from its checkpoint.
template <Scalar T>
run::RunOutcome train_run(const Settings& s, const Variant& v, run::CommonOptions common,
                          const Digits<T>& shared, run::SweepStatus& status, std::size_t index,
                          const distributed::Communicator& comm) {
  using Clock = std::chrono::steady_clock;
  const Digits<T> d = shared.clone();  // this thread's own copy
  Generator seeds(common.seed);
  Generator init(seeds.next_u64()), shuffle(seeds.next_u64()), proj(seeds.next_u64()),
      noise(seeds.next_u64());

  // Model: bias-free ReLU MLP, PyTorch's default init, every parameter x init_scale.
  auto model = nn::make_mlp<T>(784, s.width, s.depth, 10, s.bias, init);
  nn::scale_parameters(model, s.init_scale);
  const auto named = model.named_parameters();
  const auto params = model.trainable_parameters();
  // Data-parallel (comm.size() > 1): every rank draws the same model, batches, projections
  // and noise from the same seeds and trains on its rows of each batch; the gradients are
  // summed over ranks, so every rank takes the single process's step (docs/scaling.md).
  distributed::DataParallel<T> dp(params, comm);
  AdamW<T> opt(params, {.lr = s.lr, .weight_decay = s.weight_decay});
  std::optional<GrokfastEma<T>> ema;
  if (v.grokfast) ema.emplace(params, s.grokfast_alpha, s.grokfast_lamb);
  BatchIterator<T> batches(d.x_train, d.y_train,
                           {.batch_size = s.batch_size, .shuffle = true, .one_hot_classes = 10},
                           shuffle);
  const bool ce = v.loss_fn == "ce";

  nlohmann::json settings = s;
  settings.update(nlohmann::json(v));
  settings["variant"] = v.name;
  run::Run r(
      common,
      {.program = "accelerating_grokking",
       .settings = settings,
       .data =
           {{"name", "mnist"}, {"source", d.source}, {"n_train", s.n_train}, {"n_test", s.n_test}},
       .columns = {"epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "penalty",
                   "centroid_alignment", "jacobian_alignment", "opt_seconds", "opt_cpu_seconds"},
       .resumable_settings = {"max_epochs"},
       .checkpoint_every = 100,
       .total_steps = s.max_epochs,
       .step_name = "epoch"},
      "",
      comm);  // data-parallel: rank 0 alone writes the run's folder

  // Optimisation time: wall clock, and CPU time of this thread (a shared machine inflates it
  // far less; with --threads 1 it is the whole cost of the run's arithmetic).
  double opt_seconds = 0, cpu_seconds = 0, train_acc = 0, penalty = 0;
  // Data-parallel, each rank evaluates its block of each set: every figure is a mean over
  // samples, so the blocks' means weighted by their shares, summed over ranks (one allreduce
  // of six numbers), are the whole set's. One process evaluates everything.
  auto evaluate = [&](std::int64_t epoch) {
    const index_t n_probe = std::min<index_t>(s.centroid_samples, s.n_test);
    const auto train = dp.shard(d.x_train.shape()[0]), test = dp.shard(d.x_test.shape()[0]),
               probe = dp.shard(n_probe);
    const Tensor<T> out_train = model(dp.rows(d.x_train, train));  // values only, no graph
    const Tensor<T> out_test = model(dp.rows(d.x_test, test));
    const Tensor<T> x_probe = dp.rows(d.x_test.rows(0, n_probe), probe);
    const auto centroid = align::centroids(model, x_probe);
    const auto jacobian = align::jacobian_alignment(model, x_probe);
    double m[6] = {
        dp.share_of(data_loss(out_train, dp.rows(d.t_train, train), ce), train),
        dp.share_of(metrics::argmax_accuracy(out_train, dp.rows(d.y_train, train)), train),
        dp.share_of(data_loss(out_test, dp.rows(d.t_test, test), ce), test),
        dp.share_of(metrics::argmax_accuracy(out_test, dp.rows(d.y_test, test)), test),
        dp.share_of(centroid.alignment.array().template cast<double>().mean(), probe),
        dp.share_of(double(jacobian.mean), probe)};
    dp.sum(m, 6);
    train_acc = m[1];
    const double test_acc = m[3];
    r.log({double(epoch), m[0], train_acc, m[2], test_acc, penalty, m[4], m[5], opt_seconds,
           cpu_seconds});
    status.update(index, epoch, test_acc);
    r.progress().update(epoch, {{"train", train_acc}, {"test", test_acc}});
    return test_acc;
  };

  std::int64_t epoch = r.start_step();
  if (r.resumed()) {
    const auto& c = r.checkpoint();
    run::load_parameters(c, "model.", named);
    run::load_state(c, "adamw.", opt);
    if (ema) run::load_state(c, "grokfast.", *ema);
    c.restore("gen.shuffle", shuffle);
    c.restore("gen.proj", proj);
    c.restore("gen.noise", noise);
    batches.restore(c.integers<std::int64_t>("batches.order"), c.integer("batches.position"));
    opt_seconds = c.meta().at("opt_seconds").get<double>();
    cpu_seconds = c.meta().at("cpu_seconds").get<double>();
    train_acc = c.meta().at("train_accuracy").get<double>();
  } else {
    evaluate(0);
  }

  run::RunOutcome outcome;
  while (epoch < s.max_epochs) {
    ++epoch;
    // One epoch of optimisation, timed on its own (evaluation is not part of the cost).
    const auto t0 = Clock::now();
    const double c0 = thread_cpu_seconds();
    double pen_sum = 0;
    for (index_t b = 0; b < batches.batches_per_epoch(); ++b) {
      batches.next();
      Tensor<T> xb = batches.inputs();  // the iterator's buffer, rewritten by the next batch
      if (v.adv_training) {
        const T sigma = static_cast<T>(std::max(s.noise_max * (1 - train_acc), s.noise_min));
        for (index_t i = 0; i < xb.numel(); ++i) xb.data()[i] += sigma * T(noise.normal());
      }
      const bool penalised = v.lambda_jac > 0 || (v.align != "none" && v.lambda_align > 0);
      // This rank's rows; its loss is their share of the global batch mean, and its penalty
      // their share of the global batch's (the projections keyed by global sample index).
      const auto shard = dp.shard(xb.shape()[0]);
      const Var<T> xv(dp.rows(xb, shard), penalised);
      const Var<T> out = model(xv);
      const Tensor<T> targets = dp.rows(batches.targets(), shard);
      Var<T> loss = ce ? cross_entropy(out, targets) : mse(out, targets);
      loss = dp.share_of(loss, shard);
      if (penalised) {
        const auto aopt = dp.penalty_options(shard, align::AlignmentPenaltyOptions{});
        // The variant's penalty term, its weight applied; `penalty` logs it unweighted.
        const auto [pen, weight] =
            v.lambda_jac > 0
                ? std::pair{align::grokalign_penalty_from(out, xv, proj, dp.penalty_options(shard)),
                            v.lambda_jac}
            : v.align == "centroid"
                ? std::pair{align::centroid_alignment_penalty_from(out, xv, aopt), v.lambda_align}
                : std::pair{align::jacobian_alignment_penalty_from(out, xv, proj, aopt),
                            v.lambda_align};
        loss = loss + pen * static_cast<T>(weight);
        pen_sum += pen.item();
      }
      opt.zero_grad(true);
      loss.backward(params);
      dp.reduce_gradients();
      if (common.nan_guard) {
        // The global loss, so that every rank stops alike (a rank left alone in the next
        // allreduce would wait forever).
        run::check_finite_loss(epoch, "loss", dp.sum(loss.item()));
        run::check_finite_gradients(epoch, named);
      }
      if (ema) ema->apply();
      opt.step();
    }
    opt_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    cpu_seconds += thread_cpu_seconds() - c0;
    pen_sum = dp.sum(pen_sum);  // the ranks' shares of each batch's penalty
    penalty = pen_sum / static_cast<double>(batches.batches_per_epoch());

    if (epoch % s.log_every != 0 && epoch != s.max_epochs) continue;
    const double test_acc = evaluate(epoch);
    outcome.finished = true;
    outcome.reached = test_acc > s.target;
    outcome.steps = epoch;
    outcome.opt_seconds = opt_seconds;
    outcome.cpu_seconds = cpu_seconds;
    outcome.final_metric = test_acc;
    if (outcome.reached) break;
    // At the cap too, so that a resume with a larger --max_epochs carries on from here.
    const bool at_cap = epoch == s.max_epochs && common.checkpoint_every != 0;
    if ((epoch % s.log_every == 0 && r.checkpoint_due(epoch)) || at_cap) {
      run::Checkpoint c;
      run::save_parameters(c, "model.", named);
      run::save_state(c, "adamw.", opt);
      if (ema) run::save_state(c, "grokfast.", *ema);
      c.put("gen.shuffle", shuffle);
      c.put("gen.proj", proj);
      c.put("gen.noise", noise);
      c.put("batches.order", batches.order());
      c.put("batches.position", std::vector<std::int64_t>{batches.position()});
      c.meta()["opt_seconds"] = opt_seconds;
      c.meta()["cpu_seconds"] = cpu_seconds;
      c.meta()["train_accuracy"] = train_acc;
      r.save_checkpoint(c, epoch);
    }
  }
  r.progress().finish();
  if (!outcome.finished) {  // resumed at the cap: nothing left to run
    outcome.finished = true;
    outcome.steps = epoch;
    outcome.opt_seconds = opt_seconds;
    outcome.cpu_seconds = cpu_seconds;
  }
  if (r.writes()) run::write_outcome(r.dir(), outcome);
  return outcome;
}

int main(int argc, char** argv) {
  return run::guarded_main([&] {
    // First: under mpirun every rank starts here (one process without MPI; a build without
    // MPI started as several ranks stops here, saying so).
    distributed::Environment env(&argc, &argv);
    const distributed::Communicator comm = env.world();
    const bool parallel = comm.size() > 1;
    CLI::App app{
        "Epochs and seconds until an MNIST MLP groks: weight decay vs GrokAlign, "
        "Grokfast and noise"};
    run::CommonOptions common;
    run::add_common_flags(app, common, {.dtype = "f64", .program = "accelerating_grokking"});
    Settings s;
    run::SettingsFlags<Settings> flags(app, s);
    flags.add("--n_train", &Settings::n_train, "Training digits (the first n)");
    flags.add("--n_test", &Settings::n_test, "Test digits (the first n)");
    flags.add("--depth", &Settings::depth, "Linear layers of the MLP");
    flags.add("--width", &Settings::width, "Hidden width");
    flags.add("--bias", &Settings::bias, "Give the Linear layers biases");
    flags.add("--init_scale", &Settings::init_scale, "Multiply every initial parameter by this");
    flags.add("--lr", &Settings::lr, "AdamW learning rate");
    flags.add("--weight_decay", &Settings::weight_decay, "AdamW weight decay");
    flags.add("--batch_size", &Settings::batch_size, "Batch size");
    flags.add("--log_every", &Settings::log_every, "Epochs between evaluations");
    flags.add("--max_epochs", &Settings::max_epochs, "Give up after this many epochs");
    flags.add("--target", &Settings::target, "Stop once test accuracy exceeds this");
    flags.add("--grokfast_alpha", &Settings::grokfast_alpha, "Grokfast EMA alpha");
    flags.add("--grokfast_lamb", &Settings::grokfast_lamb, "Grokfast EMA lamb");
    std::string variants_flag = kDefaultVariants;
    app.add_option(
           "--variants", variants_flag,
           fmt::format("Comma-separated variants: {}, or custom", fmt::join(kVariants, ", ")))
        ->capture_default_str();
    int seeds = 1, jobs = 1;
    bool summary_only = false;
    app.add_flag("--summary_only", summary_only,
                 "With --resume: write the summary of the runs finished so far, run nothing");
    app.add_option("--seeds", seeds, "Seeds per variant: --seed .. --seed + N - 1")
        ->capture_default_str();
    app.add_option("--jobs", jobs, "Runs side by side (each single-threaded unless --threads)")
        ->capture_default_str();
    double lambda_jac = 0;
    auto* lambda_opt = app.add_option("--lambda_jac", lambda_jac,
                                      "GrokAlign weight (grokalign_ce 1e-3, grokalign_mse 1e-4)");
    std::vector<double> lambda_align;
    auto* lambda_align_opt =
        app.add_option("--lambda_align", lambda_align,
                       "Alignment penalty weight of the *_align_* variants (centroid 100, "
                       "jacobian 1000); several values, comma-separated, run one variant each")
            ->delimiter(',');
    Variant custom{"custom"};
    auto* loss_opt = app.add_option("--loss_fn", custom.loss_fn, "custom variant: mse or ce")
                         ->check(CLI::IsMember({"mse", "ce"}));
    auto* gf_opt = app.add_flag("--grokfast", custom.grokfast, "custom variant: Grokfast EMA");
    auto* adv_opt =
        app.add_flag("--adv_training", custom.adv_training, "custom variant: input noise");
    std::string mpi_mode = "auto";
    app.add_option(
           "--mpi_mode", mpi_mode,
           "Under mpirun: runs (each rank runs whole runs, taking the next when free), data "
           "(every run data-parallel on all the ranks, one after another), or auto "
           "(runs when the sweep has at least as many runs as ranks)")
        ->check(CLI::IsMember({"auto", "runs", "data"}))
        ->capture_default_str();
    if (int rc = run::parse_flags(app, argc, argv); rc >= 0) return rc;

    // A resumed sweep takes what it was started with from OUT/sweep.json.
    const bool resuming = !common.resume.empty();
    const std::filesystem::path out =
        resuming ? std::filesystem::path(common.resume)
                 : (common.out.empty() ? run::default_out_dir("accelerating_grokking")
                                       : std::filesystem::path(common.out));
    std::vector<Variant> chosen;
    if (resuming) {
      std::ifstream in(out / "sweep.json");
      if (!in)
        throw run::FlagError("--resume", "'" + out.string() + "' holds no sweep.json to resume");
      const auto j = nlohmann::json::parse(in);
      for (const char* f :
           {"--variants", "--seeds", "--seed", "--lambda_jac", "--lambda_align", "--loss_fn",
            "--grokfast", "--adv_training", "--preset", "--smoke", "--dtype"})
        if (app.get_option(f)->count())
          throw run::FlagError(f,
                               "a resumed sweep keeps its own; give only --resume (and "
                               "--max_epochs, --jobs, --threads, --quiet, --summary_only)");
      flags.apply(j.at("settings").get<Settings>());
      chosen = j.at("variants").get<std::vector<Variant>>();
      seeds = j.at("seeds").get<int>();
      common.seed = j.at("seed").get<std::uint64_t>();
      common.dtype = j.at("dtype").get<std::string>();
      common.preset = j.at("preset").get<std::string>();
      common.smoke = j.at("smoke").get<bool>();
      if (!app.get_option("--data_dir")->count()) common.data_dir = j.value("data_dir", "");
    } else {
      flags.apply(preset(common.preset, common.smoke));
    }

    run::require_positive("--lr", s.lr);
    run::require_nonnegative("--weight_decay", s.weight_decay);
    run::require_positive("--init_scale", s.init_scale);
    run::require_flag(s.target >= 0 && s.target < 1, "--target", "in [0, 1)", s.target);
    for (auto [flag, value] : {std::pair{"--n_train", s.n_train},
                               {"--n_test", s.n_test},
                               {"--width", s.width},
                               {"--batch_size", s.batch_size},
                               {"--log_every", s.log_every},
                               {"--max_epochs", s.max_epochs},
                               {"--depth", std::int64_t{s.depth}},
                               {"--seeds", std::int64_t{seeds}},
                               {"--jobs", std::int64_t{jobs}}})
      run::require_flag(value >= 1, flag, "an integer >= 1", double(value));
    run::require_flag(s.grokfast_alpha >= 0 && s.grokfast_alpha <= 1, "--grokfast_alpha",
                      "in [0, 1]", s.grokfast_alpha);
    run::require_nonnegative("--grokfast_lamb", s.grokfast_lamb);
    if (lambda_opt->count()) run::require_nonnegative("--lambda_jac", lambda_jac);
    for (double l : lambda_align) run::require_nonnegative("--lambda_align", l);
    const std::int64_t every = common.checkpoint_every < 0 ? 100 : common.checkpoint_every;
    run::require_flag(every % s.log_every == 0, "--checkpoint_every",
                      fmt::format("a multiple of --log_every ({})", s.log_every), double(every));

    if (!resuming) {
      const bool custom_flags = loss_opt->count() || gf_opt->count() || adv_opt->count();
      std::vector<std::string> names;
      for (auto rest = variants_flag; !rest.empty();) {
        const auto comma = rest.find(',');
        names.push_back(rest.substr(0, comma));
        rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
      }
      for (const auto& n : names)
        for (auto& v :
             variants(n, s, lambda_opt->count() ? std::optional(lambda_jac) : std::nullopt,
                      lambda_align, custom))
          chosen.push_back(std::move(v));
      if (lambda_align_opt->count() &&
          std::none_of(chosen.begin(), chosen.end(),
                       [](const Variant& v) { return v.align != "none"; }))
        throw run::FlagError("--lambda_align",
                             "weighs the alignment variants (centroid_align_ce, "
                             "centroid_align_mse, jacobian_align_ce, jacobian_align_mse); "
                             "none of them is in --variants");
      if (custom_flags && !(names.size() == 1 && names[0] == "custom"))
        throw run::FlagError("--loss_fn",
                             "--loss_fn, --grokfast and --adv_training define the "
                             "variant 'custom'; use them with --variants custom");
    }

    // One folder per run; a fresh sweep refuses a folder that already holds one.
    std::vector<run::SweepRun> runs;
    for (const auto& v : chosen)
      for (int k = 0; k < seeds; ++k)
        runs.push_back(
            {v.name, common.seed + k, out / v.name / fmt::format("seed{}", common.seed + k)});
    // Under mpirun: whole runs spread over the ranks, or each run data-parallel on all of them.
    const bool by_runs =
        parallel && (mpi_mode == "runs" ||
                     (mpi_mode == "auto" && runs.size() >= static_cast<std::size_t>(comm.size())));
    const bool data_parallel = parallel && !by_runs;
    if (data_parallel)
      run::require_rows_for_every_rank(s.n_train, s.batch_size, comm.size(), "training digits");
    if (data_parallel && jobs > 1)
      throw run::FlagError("--jobs",
                           "with --mpi_mode data every run uses all the ranks, one run at "
                           "a time; leave --jobs at 1");
    if (summary_only && !resuming)
      throw run::FlagError("--summary_only", "needs --resume OUT, the sweep to summarise");
    // A run that gave up at a lower cap carries on to a raised --max_epochs (rank 0 alone
    // touches OUT; the barrier below orders it before any rank reads OUT's done.json files).
    if (resuming && !summary_only && comm.is_root())
      for (const auto& rr : runs)
        if (auto o = run::read_outcome(rr.dir); o && !o->reached && o->steps < s.max_epochs)
          std::filesystem::remove(run::done_path(rr.dir));
    if (!resuming) {
      for (const auto& rr : runs)
        if (std::filesystem::exists(rr.dir / "checkpoint.bin") ||
            std::filesystem::exists(run::done_path(rr.dir)))
          throw run::FlagError("--out", "'" + out.string() +
                                            "' already holds this sweep; "
                                            "continue it with --resume " +
                                            out.string());
    }
    // Rank 0 alone prints, and writes OUT's files and (data-parallel) every run's folder; the
    // other ranks write nothing (run::Run). With --mpi_mode runs every rank writes the folders
    // of the runs it takes, rank 0 the rest.
    comm.barrier();  // every rank has checked OUT before rank 0 writes into it
    if (!resuming && comm.is_root()) {
      // Under mpirun a failure here must end the job: the other ranks are on their way into
      // the first run's collectives.
      try {
        std::filesystem::create_directories(out);
        const nlohmann::json j = {
            {"settings", s},
            {"variants", chosen},
            {"seeds", seeds},
            {"seed", common.seed},
            {"dtype", common.dtype},
            {"preset", common.preset},
            {"smoke", common.smoke},
            {"data_dir", std::filesystem::absolute(resolve_data_dir(common.data_dir)).string()}};
        std::ofstream(out / "sweep.json") << j.dump(2) << "\n";
      } catch (const std::exception& e) {
        if (parallel) comm.abort(fmt::format("accelerating_grokking: {}", e.what()));
        throw;
      }
    }
    fmt::print("accelerating_grokking: {} run(s) ({} x {} seed(s)), {} at a time{}, into {}\n",
               runs.size(), chosen.size(), seeds, jobs,
               data_parallel ? fmt::format(", each data-parallel on {} ranks", comm.size())
               : by_runs ? fmt::format(" on each of {} ranks (each takes the next run when free)",
                                       comm.size())
                         : "",
               out.string());
    std::fflush(stdout);

    return run::with_dtype(common.dtype, [&]<class T>() {
      const Digits<T> digits = load_digits<T>(s, common.data_dir);
      std::vector<run::RunOutcome> outcomes(runs.size());
      // One run's options: its seed and folder, resumed when it left a checkpoint there.
      const auto options_of = [&](const run::SweepRun& rr) {
        run::CommonOptions c = common;
        c.seed = rr.seed;
        c.out = rr.dir.string();
        c.resume = std::filesystem::exists(rr.dir / "checkpoint.bin") ? rr.dir.string() : "";
        c.quiet = common.quiet || runs.size() > 1;  // several runs: status lines instead
        return c;
      };
      if (summary_only) {
        for (std::size_t i = 0; i < runs.size(); ++i)
          outcomes[i] = run::read_outcome(runs[i].dir).value_or(run::RunOutcome{});
      } else if (by_runs) {
        // Whole runs, each as one process would run it (Communicator::local(): no MPI inside
        // a run, so --jobs threads may run them side by side); a rank takes the next run
        // whenever one of its workers is free (one counter shared by every rank), so ranks
        // that draw short runs take more of them.
        std::vector<run::RunOutcome> mine;
        {
          distributed::SharedCounter next_run(comm);
          mine = run::run_sweep(
              runs, {.jobs = jobs, .quiet = common.quiet, .next = [&] { return next_run.next(); }},
              [&](const run::SweepRun& rr, std::size_t i, run::SweepStatus& status) {
                const run::CommonOptions c = options_of(rr);
                const Variant& v = chosen[i / seeds];
                // A failed run ends the job naming the rank and the run (the others' finished
                // runs stay on disk; --resume OUT carries on).
                try {
                  return train_run<T>(s, v, c, digits, status, i,
                                      distributed::Communicator::local());
                } catch (const std::exception& e) {
                  comm.abort(fmt::format("accelerating_grokking: {}: {}", rr.label(), e.what()));
                }
              });
          comm.barrier();  // every run is finished: its done.json is in OUT
        }
        // Rank 0 holds the outcomes of its own runs; the others' are in their done.json.
        if (comm.is_root())
          for (std::size_t i = 0; i < runs.size(); ++i) {
            outcomes[i] =
                mine[i].finished ? mine[i] : run::read_outcome(runs[i].dir).value_or(mine[i]);
            if (!outcomes[i].finished)
              outcomes[i].error =
                  fmt::format("no done.json in {}: the run did not finish", runs[i].dir.string());
          }
      } else {
        outcomes = run::run_sweep(
            runs, {.jobs = jobs, .quiet = common.quiet},
            [&](const run::SweepRun& rr, std::size_t i, run::SweepStatus& status) {
              const run::CommonOptions c = options_of(rr);
              const Variant& v = chosen[i / seeds];
              if (!parallel) return train_run<T>(s, v, c, digits, status, i, comm);
              // A run that fails on one rank would leave the others waiting: it ends the job.
              // (Every rank reads the run's folder, OUT being on a filesystem every rank sees:
              // one machine's or a cluster's shared one; rank 0 alone writes it.)
              try {
                return train_run<T>(s, v, c, digits, status, i, comm);
              } catch (const run::AgreedFailure&) {
                throw;  // every rank knows (the run's folder could not be opened): the sweep
                        // records it and goes on, on every rank alike
              } catch (const std::exception& e) {
                comm.abort(fmt::format("accelerating_grokking: {}: {}", rr.label(), e.what()));
              }
            });
      }
      if (!comm.is_root()) return 0;

      std::vector<std::string> names;
      for (const auto& v : chosen) names.push_back(v.name);
      const auto table =
          run::summary_table(run::summarise(runs, outcomes, names), {"baseline", "baseline_ce"},
                             "epoch", fmt::format("test accuracy > {}", s.target));
      const std::string md = fmt::format(
          "# accelerating_grokking: epochs and optimisation seconds to test accuracy > {}\n\n"
          "MNIST, {} train / {} test digits, MLP depth {} width {}{}, init x{}, AdamW lr {} "
          "wd {}, batch {}, {}, seeds {}..{}, accuracy checked every {} epochs, cap {}.\n\n{}",
          s.target, s.n_train, s.n_test, s.depth, s.width, s.bias ? " with bias" : "", s.init_scale,
          s.lr, s.weight_decay, s.batch_size, common.dtype, common.seed, common.seed + seeds - 1,
          s.log_every, s.max_epochs, table.markdown);
      std::ofstream(out / "summary.md") << md;
      std::ofstream(out / "summary.csv") << table.csv;
      std::ofstream runs_csv(out / "runs.csv");
      runs_csv << "variant,seed,finished,reached,epochs,opt_seconds,cpu_seconds,test_accuracy,"
                  "error\n";
      bool failed = false;
      for (std::size_t i = 0; i < runs.size(); ++i) {
        const auto& o = outcomes[i];
        failed = failed || !o.error.empty();
        runs_csv << fmt::format("{},{},{},{},{},{},{},{},\"{}\"\n", runs[i].variant, runs[i].seed,
                                o.finished, o.reached, o.steps, o.opt_seconds, o.cpu_seconds,
                                o.final_metric, o.error);
      }
      fmt::print("\n{}\nWrote {}/summary.md, summary.csv, runs.csv\n", md, out.string());
      return failed ? 1 : 0;
    });
  });
}
