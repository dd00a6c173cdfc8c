// xor_grokking: the paper's Section 4.2 / Figure 4. A two-layer ReLU network learns
// y = x1 * x2 from n points in p dimensions whose other p - 2 coordinates are +-epsilon
// noise. With weight decay alone it first memorises the noise and generalises (and becomes
// robust to noise on those coordinates) later; GrokAlign (--lambda_jac 1.0) keeps the
// centroid norm low so alignment and robustness arrive sooner.
//
// Recipe: make_xor n=400 training points (and a test set of the same size drawn next from
// the same generator; the paper's figure reports test accuracy without saying how its test
// set is drawn), MLP p -> width -> 1 without bias, MSE against y in {-1, +1}, SGD lr 0.1,
// weight decay 0.1, full batch, loss = MSE + lambda_jac * GrokAlign penalty (one output, so
// the one-projection estimate is exact). Logged every --log_every steps: loss, sign
// accuracy, test accuracy under Gaussian noise of standard deviation 0.2 ... 1.0 on the
// noise coordinates 2..p-1, and the centroid norm and alignment of the first training point.
// Under mpirun -np N: data-parallel, each rank takes a block of the training points and, at a
// logged step, a block of the training and test points to evaluate; rank 0 alone writes; the
// same numbers as one process to rounding.
//
// Sizes:
//   --preset paper  p = 40000, width 2048, epsilon 0.05 (as the paper), the authors' noise
//                   test (--noise_draw shared): the first layer alone holds 82M weights,
//                   ~660 MB in float64, and a step costs ~100 GFLOP (more with the penalty's
//                   double backward), hours on 2 cores.
//   cpu (default)   p = 4000, width 512, epsilon 0.158: 40x fewer weights, so 1000 steps take
//                   1-3 minutes. What it holds fixed is what makes the network memorise
//                   before it generalises: the noise's total norm per point,
//                   epsilon sqrt(p - 2) = 10 as in the paper (0.05 sqrt(39998)), against the
//                   signal's sqrt(2), and noise coordinates that outnumber the points 10 to 1,
//                   so the training set can be fitted through the noise alone. Shrinking p at
//                   the paper's epsilon drops that norm to 3.2 and the network then generalises
//                   at once (docs/reproduction.md). This is the "signal-to-noise of the
//                   inputs sets memorisation first" reading of the XOR grokking literature
//                   (Xu et al. 2023, "Benign, tempered, or catastrophic: grokking XOR";
//                   Frei et al. 2023 on memorisation of noisy XOR by two-layer ReLU networks).
//   --smoke         p = 200, width 64, n = 100, 40 steps: a few seconds.
#include <grokalign/distributed/data_parallel.hpp>
#include <grokalign/grokalign.hpp>
#include <grokalign/metrics.hpp>
#include <grokalign/run.hpp>
#include <grokalign/run/schedule.hpp>

#include <cmath>
#include <iterator>
#include <nlohmann/json.hpp>

namespace ga = grokalign;
namespace run = grokalign::run;

namespace {

struct Settings {
  std::int64_t n = 400;
  std::int64_t p = 4000;
  double epsilon = 0.05;
  std::int64_t width = 512;
  double lr = 0.1;
  double weight_decay = 0.1;
  double lambda_jac = 0.0;
  std::int64_t steps = 1000;
  std::int64_t log_every = 10;
  // "fresh": a new Gaussian draw for each noise amplitude (ours); "shared": one draw per
  // evaluation, scaled to each amplitude (the authors' test).
  std::string noise_draw = "fresh";
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Settings, n, p, epsilon, width, lr, weight_decay, lambda_jac,
                                   steps, log_every, noise_draw)

constexpr double kPaperP = 40000, kPaperEpsilon = 0.05;

Settings preset(const std::string& name) {
  Settings s;  // cpu: reduced p and width, the paper's noise norm (see the top of the file)
  s.epsilon = kPaperEpsilon * std::sqrt((kPaperP - 2) / static_cast<double>(s.p - 2));
  if (name == "paper") {
    s.p = static_cast<std::int64_t>(kPaperP);
    s.epsilon = kPaperEpsilon;
    s.width = 2048;
    s.noise_draw = "shared";
  } else if (name == "smoke") {
    s.epsilon = kPaperEpsilon;
    s.n = 100;
    s.p = 200;
    s.width = 64;
    s.steps = 40;
  }
  return s;
}

constexpr double kNoiseLevels[] = {0.2, 0.4, 0.6, 0.8, 1.0};

template <ga::Scalar T>
int train(const Settings& s, const run::CommonOptions& common) {
  // Separate generators so that, e.g., the penalty's projections never shift the data.
  ga::Generator data_gen(common.seed), init_gen(common.seed + 1), proj_gen(common.seed + 2),
      eval_gen(common.seed + 3);
  const auto train_set = ga::make_xor<T>(s.n, s.p, s.epsilon, data_gen);
  const auto test_set = ga::make_xor<T>(s.n, s.p, s.epsilon, data_gen);

  auto model = ga::nn::make_mlp<T>(s.p, s.width, 2, 1, /*bias=*/false, init_gen);
  const auto named = model.named_parameters();
  ga::SGD<T> opt(model.trainable_parameters(), {.lr = s.lr, .weight_decay = s.weight_decay});

  std::vector<std::string> columns = {"step", "train_loss", "train_accuracy", "test_accuracy"};
  for (double a : kNoiseLevels) columns.push_back(fmt::format("noisy_accuracy_{:.1f}", a));
  columns.insert(columns.end(), {"centroid_norm", "centroid_alignment"});
  run::RunSpec spec{.program = "xor_grokking",
                    .settings = s,
                    .data = {{"name", "xor"},
                             {"train", s.n},
                             {"test", s.n},
                             {"test_set", "drawn after the training set from the same generator"},
                             {"p", s.p},
                             {"epsilon", s.epsilon}},
                    .columns = columns,
                    .resumable_settings = {"steps"},
                    .checkpoint_every = 0,  // unused: checkpoints follow the log schedule
                    .total_steps = s.steps,
                    .step_name = "step"};
  run::Run r(common, spec, run::default_out_dir("xor_grokking"));
  if (r.resumed()) {
    run::load_parameters(r.checkpoint(), "model.", named);
    run::load_state(r.checkpoint(), "sgd.", opt);
    r.checkpoint().restore("gen.proj", proj_gen);
    r.checkpoint().restore("gen.eval", eval_gen);
  }
  const auto schedule = run::LogSchedule::every(s.steps, s.log_every);
  ga::distributed::DataParallel<T> dp(opt.parameters());  // under mpirun: data-parallel steps

  // Under mpirun each rank evaluates its block of the training and test points; the means,
  // weighted by their blocks' shares, are summed over the ranks in one allreduce. The noise is
  // drawn by every rank for the whole test set, in the order noisy_sign_accuracy draws it
  // (row by row), so every rank's eval_gen advances alike and each point gets the noise it
  // gets in one process; only the forward pass is split. One process evaluates everything, as
  // before. The centroid is of the single first training point: alike everywhere.
  const ga::metrics::NoiseOptions noise_coordinates{.begin = 2, .end = -1};
  ga::Tensor<T> noisy_test = ga::Tensor<T>::empty(test_set.x.shape());
  ga::Tensor<T> unit_noise = ga::Tensor<T>::empty(test_set.x.shape());  // the shared draw
  const bool shared_draw = s.noise_draw == "shared";
  auto log_row = [&](std::int64_t step) {
    const auto train = dp.shard(s.n), test = dp.shard(s.n);
    // train loss, train accuracy, test accuracy, then one noisy accuracy per noise level
    constexpr std::size_t kMeans = 3 + std::size(kNoiseLevels);
    double means[kMeans] = {};
    if (train.rows) {
      const ga::Tensor<T> out = model(dp.rows(train_set.x, train));  // values only, no graph
      const ga::Tensor<T> y = dp.rows(train_set.y, train);
      means[0] = dp.share_of(ga::mse(out, y).item(), train);
      means[1] = dp.share_of(ga::metrics::sign_accuracy(out, y), train);
    }
    const ga::Tensor<T> test_y = dp.rows(test_set.y, test);
    if (test.rows)
      means[2] = dp.share_of(
          ga::metrics::sign_accuracy<T>(model, dp.rows(test_set.x, test), test_y), test);
    if (shared_draw) {  // z ~ N(0, 1) on the noise coordinates, once for every amplitude
      ga::metrics::NoiseOptions unit = noise_coordinates;
      unit.sigma = 1.0;
      unit_noise.fill(T(0));
      ga::metrics::add_noise(unit_noise, unit, eval_gen);
    }
    for (std::size_t k = 0; k < std::size(kNoiseLevels); ++k) {
      ga::metrics::NoiseOptions noise = noise_coordinates;
      noise.sigma = kNoiseLevels[k];
      noisy_test.copy_from(test_set.x);
      if (shared_draw) {
        const T a = static_cast<T>(kNoiseLevels[k]);
        for (ga::index_t i = 0; i < noisy_test.numel(); ++i)
          noisy_test.data()[i] += a * unit_noise.data()[i];
      } else {
        ga::metrics::add_noise(noisy_test, noise, eval_gen);  // the whole set's draws
      }
      if (test.rows)
        means[3 + k] = dp.share_of(
            ga::metrics::sign_accuracy<T>(model, dp.rows(noisy_test, test), test_y), test);
    }
    dp.sum(means, static_cast<std::int64_t>(kMeans));
    std::vector<double> row = {double(step)};
    row.insert(row.end(), std::begin(means), std::end(means));
    const auto c = ga::align::centroids<T>(model, train_set.x.rows(0, 1));
    row.push_back(c.norm.data()[0]);
    row.push_back(c.alignment.data()[0]);
    r.log(row);
    r.progress().update(step, {{"loss", row[1]}, {"test_acc", row[3]}, {"noisy_1.0", row[8]}});
  };

  if (r.start_step() == 0) log_row(0);
  for (std::int64_t step = r.start_step() + 1; step <= s.steps; ++step) {
    const bool penalised = s.lambda_jac > 0;
    // Under mpirun: this rank's rows of the full batch, its share of the loss.
    const auto shard = dp.shard(s.n);
    const ga::Var<T> xv(dp.rows(train_set.x, shard), penalised);  // the penalty's input
    const ga::Var<T> out = model(xv);
    ga::Var<T> loss = dp.share_of(ga::mse(out, dp.rows(train_set.y, shard)), shard);
    if (penalised)
      loss =
          loss + ga::align::grokalign_penalty_from(out, xv, proj_gen, dp.penalty_options(shard)) *
                     static_cast<T>(s.lambda_jac);
    opt.zero_grad(true);
    loss.backward(opt.parameters());
    dp.reduce_gradients();
    if (common.nan_guard) {
      run::check_finite_loss(step, "loss", dp.sum(loss.item()));  // every rank stops alike
      run::check_finite_gradients(step, named);
    }
    opt.step();
    const bool logged = schedule.logs(step);
    if (logged)
      log_row(step);
    else
      r.progress().update(step);
    if (run::checkpoint_now(common, step, logged)) {
      run::Checkpoint c;
      run::save_parameters(c, "model.", named);
      run::save_state(c, "sgd.", opt);
      c.put("gen.proj", proj_gen);
      c.put("gen.eval", eval_gen);
      r.save_checkpoint(c, step);
    }
  }
  r.progress().finish();
  fmt::print("xor_grokking: wrote {}\n", r.dir().string());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return run::guarded_main([&] {
    CLI::App app("xor_grokking: GrokAlign on the high-dimensional XOR problem (paper Sec 4.2)");
    run::CommonOptions common;
    run::add_common_flags(app, common, {.dtype = "f64", .program = "xor_grokking"});
    Settings s = preset("cpu");  // so --help shows the default size
    run::SettingsFlags<Settings> flags(app, s);
    flags.add("--n", &Settings::n, "Training points (the test set has as many)");
    flags.add("--p", &Settings::p, "Input dimension (2 signal + p-2 noise coordinates)");
    flags.add("--epsilon", &Settings::epsilon, "Magnitude of the noise coordinates");
    flags.add("--width", &Settings::width, "Hidden width");
    flags.add("--lr", &Settings::lr, "SGD learning rate");
    flags.add("--weight_decay", &Settings::weight_decay, "SGD weight decay");
    flags.add("--lambda_jac", &Settings::lambda_jac, "Weight of the GrokAlign penalty (0: none)");
    flags.add("--steps", &Settings::steps, "Full-batch SGD steps");
    flags.add("--log_every", &Settings::log_every, "Steps between logged rows (and checkpoints)");
    flags
        .add("--noise_draw", &Settings::noise_draw,
             "Noisy test accuracy: fresh (a new Gaussian draw per amplitude) or shared (one "
             "draw per evaluation, scaled to each amplitude, as the authors' code)")
        ->check(CLI::IsMember({"fresh", "shared"}));
    if (int rc = run::parse_flags(app, argc, argv, &common); rc >= 0) return rc;
    flags.apply(preset(common.smoke ? "smoke" : common.preset), common);
    run::require_positive("--n", double(s.n));
    run::require_flag(s.p >= 2, "--p", "at least 2", double(s.p));
    run::require_nonnegative("--epsilon", s.epsilon);
    run::require_positive("--width", double(s.width));
    run::require_positive("--lr", s.lr);
    run::require_nonnegative("--weight_decay", s.weight_decay);
    run::require_nonnegative("--lambda_jac", s.lambda_jac);
    run::require_positive("--steps", double(s.steps));
    run::require_positive("--log_every", double(s.log_every));
    return run::with_dtype(common.dtype, [&]<class T>() { return train<T>(s, common); });
  });
}
