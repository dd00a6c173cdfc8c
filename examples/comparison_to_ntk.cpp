// comparison_to_ntk: the paper's Section 4.1 / Figure 3. A bias-free ReLU MLP separates
// MNIST zeros from ones; at log-spaced steps we log, for one sample point x0 (the first
// training digit), the empirical NTK against every training point and the rate of change
// it predicts, beside the centroid of the network at x0: 1/|c|, <c, x0> and the alignment.
// The paper's reading: while the NTK stays put (lazy regime) the centroid inner product
// hardly moves; when the centroid inner product changes, the network is learning features,
// and the NTK moves with it.
//
// Recipe: 512 zeros and 512 ones from the training split (data::balanced_subset), as many
// of each as both classes have (up to 512) from the test split; MLP 784 -> 64 -> 64 -> 1,
// no bias, every parameter times --init_scale, output times --output_scale; BCE with logits
// against labels 0/1; SGD lr 1e-2, full batch, 4000 steps; 64 log-spaced logs.
//   K_i = <grad_theta f(x0), grad_theta f(x_i)>,  rate = lr * mean_i K_i (y_i - sigmoid f(x_i))
// (align::empirical_ntk, with f including the output scale).
//
// Sizes:
//   --preset paper  the reference configuration above.
//   cpu (default)   the same: 4000 full-batch steps of this small MLP on 1024 digits take
//                   ~20 seconds, so nothing needs reducing. float64, as the authors' code.
//   --smoke         64 digits per class, 60 steps, 16 logs: a few seconds.
// Under mpirun -np N: data-parallel, each rank takes a block of the training digits and, at a
// logged step, a block of the training and test digits to evaluate (its NTK entries among
// them); rank 0 alone writes; the same numbers as one process to rounding.
#include <grokalign/distributed/data_parallel.hpp>
#include <grokalign/grokalign.hpp>
#include <grokalign/metrics.hpp>
#include <grokalign/run.hpp>
#include <grokalign/run/mnist_mlp_data.hpp>
#include <grokalign/run/schedule.hpp>

#include <nlohmann/json.hpp>

namespace ga = grokalign;
namespace run = grokalign::run;

namespace {

struct Settings {
  std::int64_t train_per_class = 512;
  std::int64_t width = 64;
  std::int64_t depth = 3;
  double init_scale = 1.0;
  double output_scale = 1.0;
  double lr = 1e-2;
  std::int64_t steps = 4000;
  std::int64_t n_logs = 64;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Settings, train_per_class, width, depth, init_scale,
                                   output_scale, lr, steps, n_logs)

Settings preset(const std::string& name) {
  Settings s;  // cpu and paper: the reference configuration
  if (name == "smoke") {
    s.train_per_class = 64;
    s.steps = 60;
    s.n_logs = 16;
  }
  return s;
}

// Labels 0/1 as a [n, 1] tensor, the targets of BCE with logits.
template <ga::Scalar T>
ga::Tensor<T> label_column(const std::vector<ga::index_t>& labels) {
  ga::Tensor<T> y = ga::Tensor<T>::empty(ga::Shape{static_cast<ga::index_t>(labels.size()), 1});
  for (std::size_t i = 0; i < labels.size(); ++i) y.data()[i] = static_cast<T>(labels[i]);
  return y;
}

template <ga::Scalar T>
int train(const Settings& s, const run::CommonOptions& common) {
  const auto data =
      run::load_flat_mnist_balanced<T>(common.data_dir, {0, 1}, s.train_per_class, 512);
  const ga::Tensor<T> y_train = label_column<T>(data.train.labels);
  const ga::Tensor<T> y_test = label_column<T>(data.test.labels);
  const ga::Tensor<T> x0 = data.train.x.rows(0, 1);  // the sample point

  ga::Generator init_gen(common.seed);
  auto model = ga::nn::make_mlp<T>(784, s.width, static_cast<int>(s.depth), 1, false, init_gen);
  ga::nn::scale_parameters(model, s.init_scale);
  const auto named = model.named_parameters();
  const T out_scale = static_cast<T>(s.output_scale);
  auto f = [&](const auto& x) { return model(x) * out_scale; };  // the network as trained
  ga::SGD<T> opt(model.trainable_parameters(), {.lr = s.lr});

  run::RunSpec spec{
      .program = "comparison_to_ntk",
      .settings = s,
      .data = data.record,
      .columns = {"step", "train_loss", "train_accuracy", "test_accuracy", "ntk_mean", "ntk_rate",
                  "inv_centroid_norm", "centroid_inner", "centroid_alignment"},
      .resumable_settings = {"steps"},
      .checkpoint_every = 0,  // unused: checkpoints follow the log schedule (schedule.hpp)
      .total_steps = s.steps,
      .step_name = "step"};
  run::Run r(common, spec, run::default_out_dir("comparison_to_ntk"));
  if (r.resumed()) {
    run::load_parameters(r.checkpoint(), "model.", named);
    run::load_state(r.checkpoint(), "sgd.", opt);
  }
  const auto schedule = run::LogSchedule::log_spaced(s.steps, s.n_logs);
  ga::distributed::DataParallel<T> dp(opt.parameters());  // under mpirun: data-parallel steps

  // Under mpirun each rank evaluates its block of the training and test digits: the NTK's
  // entries K_i of its training digits (so the kernel mean and the predicted rate, both means
  // over i, are its share of the whole row's), the loss and the accuracies; the means,
  // weighted by their blocks' shares, are summed over the ranks in one allreduce. One process
  // evaluates everything, as before. The centroid is of the single point x0: alike everywhere.
  auto log_row = [&](std::int64_t step) {
    const auto train = dp.shard(data.train.x.shape()[0]), test = dp.shard(data.test.x.shape()[0]);
    // train loss, train accuracy, test accuracy, NTK mean, NTK rate
    double means[5] = {0, 0, 0, 0, 0};
    if (train.rows) {
      const ga::Tensor<T> x = dp.rows(data.train.x, train), y = dp.rows(y_train, train);
      const ga::Tensor<T> out = f(x);
      means[0] = dp.share_of(ga::bce_with_logits(out, y).item(), train);
      means[1] = dp.share_of(ga::metrics::sigmoid_accuracy(out, y), train);
      const auto ntk =
          ga::align::empirical_ntk<T>(f, model.parameters(), x0, x, y, static_cast<T>(s.lr));
      means[3] = dp.share_of(double(ntk.kernel_mean), train);
      means[4] = dp.share_of(double(ntk.rate_of_change), train);
    }
    if (test.rows)
      means[2] = dp.share_of(
          ga::metrics::sigmoid_accuracy<T>(f, dp.rows(data.test.x, test), dp.rows(y_test, test)),
          test);
    dp.sum(means, 5);
    const auto [loss, train_acc, test_acc, ntk_mean, ntk_rate] = means;
    const auto c = ga::align::centroids<T>(f, x0);
    r.log({double(step), loss, train_acc, test_acc, ntk_mean, ntk_rate,
           1.0 / double(c.norm.data()[0]), double(c.inner.data()[0]),
           double(c.alignment.data()[0])});
    r.progress().update(step, {{"loss", loss}, {"test_acc", test_acc}, {"ntk", ntk_mean}});
  };

  if (r.start_step() == 0) log_row(0);
  for (std::int64_t step = r.start_step() + 1; step <= s.steps; ++step) {
    // Under mpirun: this rank's block of the digits, its share of the loss.
    const auto shard = dp.shard(data.train.x.shape()[0]);
    const ga::Var<T> loss = dp.share_of(
        ga::bce_with_logits(f(ga::Var<T>(dp.rows(data.train.x, shard))), dp.rows(y_train, shard)),
        shard);
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
      run::Checkpoint c;  // full-batch SGD without momentum: the weights are the whole state
      run::save_parameters(c, "model.", named);
      run::save_state(c, "sgd.", opt);
      r.save_checkpoint(c, step);
    }
  }
  r.progress().finish();
  fmt::print("comparison_to_ntk: wrote {}\n", r.dir().string());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return run::guarded_main([&] {
    CLI::App app(
        "comparison_to_ntk: centroid alignment against the empirical NTK on MNIST 0 vs 1 "
        "(paper Sec 4.1)");
    run::CommonOptions common;
    run::add_common_flags(app, common, {.dtype = "f64", .program = "comparison_to_ntk"});
    Settings s;
    run::SettingsFlags<Settings> flags(app, s);
    flags.add("--train_per_class", &Settings::train_per_class, "Training digits per class (0, 1)");
    flags.add("--width", &Settings::width, "Hidden width");
    flags.add("--depth", &Settings::depth, "Linear layers");
    flags.add("--init_scale", &Settings::init_scale, "Factor on every initial parameter");
    flags.add("--output_scale", &Settings::output_scale, "Factor on the network's output");
    flags.add("--lr", &Settings::lr, "SGD learning rate");
    flags.add("--steps", &Settings::steps, "Full-batch SGD steps");
    flags.add("--n_logs", &Settings::n_logs, "Log-spaced logging points");
    if (int rc = run::parse_flags(app, argc, argv, &common); rc >= 0) return rc;
    flags.apply(preset(common.smoke ? "smoke" : common.preset), common);
    run::require_positive("--train_per_class", double(s.train_per_class));
    run::require_positive("--width", double(s.width));
    run::require_positive("--depth", double(s.depth));
    run::require_positive("--init_scale", s.init_scale);
    run::require_positive("--output_scale", s.output_scale);
    run::require_positive("--lr", s.lr);
    run::require_positive("--steps", double(s.steps));
    run::require_positive("--n_logs", double(s.n_logs));
    return run::with_dtype(common.dtype, [&]<class T>() { return train<T>(s, common); });
  });
}
