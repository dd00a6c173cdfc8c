// delayed_robustness: GrokAlign Sec 4.3, Fig 5. A 6-conv CNN trained long on 1024 images
// becomes robust to small L-inf perturbations only late ("delayed robustness"); with the
// GrokAlign Jacobian penalty (lambda_jac 1e-3) robustness is meant to emerge earlier.
//
// Recipe (SPEC section 3; `--preset paper` is exactly this):
//   data       CIFAR-10 when --data_dir holds it, else Fashion-MNIST (Debian's
//              dataset-fashion-mnist), else the MNIST digits; first 1024 train / 1024 test
//   model      nn::make_cnn (32,32s2,64,64s2,128,128s2, 2 avg-pools, FC 128, FC 10, no bias,
//              Kaiming normal fan-out); inputs normalised per channel as the reference's
//              transform does, so the model, the penalty and the centroids see normalised
//              images, while the attack works in pixels [0, 1] through a wrapper that
//              normalises first (so eps 4/255 and the box [0, 1] are the reference's)
//   loss       MSE on one-hot targets (--loss_fn ce for cross-entropy)
//   penalty    lambda_jac * GrokAlign (Jacobian-norm estimate, one projection) w.r.t. the input
//   optimiser  AdamW lr 1e-3, wd 1e-3, batch 256 (reshuffled each epoch), grad value clip 1.0
//   logged     at log-spaced epochs: train loss/accuracy, test accuracy, robust accuracy under
//              APGD-CE (L-inf, eps 4/255) on the first --attack_samples test images, their
//              mean centroid alignment, and PC1 of the Jacobian on 64 test images
//
// Sizes. The paper's 36000 epochs of a 6-conv CNN with a 100-step APGD-CE on 1024 images at
// each of 128 logs is weeks of CPU, and its clock cannot be compressed: lr x wd x steps is
// only 0.14, so weight decay is not what delays its robustness, and raising lr does not
// shorten it. The cpu preset (the default) therefore moves to a regime whose delay has a
// known clock, a large initial scale shrunk by weight decay: the network first fits the
// training set with a large-norm, non-robust function, and robustness comes once decay has
// shrunk the weights, after ~ln(scale) / (lr wd) steps (Liu et al. 2022, "Omnigrok": large
// initialisation plus weight decay makes MNIST grok; Humayun et al. 2024, "Deep networks
// always grok": robustness arrives late, with the linear regions' migration). It holds fixed
// the paper's model, loss, optimiser, clipping and attack, and sets:
//   data         the real MNIST digits (scripts/fetch-data), 256 train / 1024 test, batch 64
//   init_scale   1.5 (the 8-layer bias-free CNN's output scales as scale^8: 2 is too large)
//   lr, wd       1e-3, 0.2; 400 epochs, a log every 10
//   attack       APGD-CE, eps 0.1 in pixels (4/255 barely hurts 28x28 grey digits), 10
//                steps on the first 128 test digits
//   float32      as the authors' (~0.8 ms per image-step: 1.5-4 minutes a run)
//   paper        the reference exactly, with the authors' attack space (normalised) and 128
//                logs; CIFAR-10 when --data_dir holds it, else Fashion-MNIST
// Alignment and PC1 are measured where the authors measure them, on the last training batch
// of the epoch (--measure_on test: on the first --attack_samples / --pc1_samples test images).
// The attack: ours works in pixels, [0, 1], through a model that normalises first; the
// authors pass normalised images to AutoAttack, which clamps to [0, 1] in those units, so
// their eps and box are not in pixels (--attack_space normalised does the same).
// --smoke: 64 train / 64 test images, 3 epochs, a 4-step attack on 16 images, PC1 on 8.
// Under mpirun -n N: each rank trains on its shard of every batch (one gradient allreduce,
// the same weights everywhere) and, at a log, evaluates and attacks its block of each set
// (each image from its one-process random start); rank 0 alone writes; the same numbers to
// rounding.
#include <grokalign/distributed/data_parallel.hpp>
#include <grokalign/grokalign.hpp>
#include <grokalign/metrics.hpp>
#include <grokalign/run.hpp>
#include <grokalign/run/schedule.hpp>
#include <grokalign/run/training_state.hpp>

#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

using namespace grokalign;

struct Settings {
  double lambda_jac = 0.0;
  std::string loss_fn = "mse";
  double lr = 1e-3;
  double weight_decay = 1e-3;
  std::int64_t batch_size = 256;
  double clip_grad_value = 1.0;
  std::int64_t epochs = 36000;
  double init_scale = 1.0;
  std::string dataset = "auto";
  std::int64_t train_size = 1024;
  std::int64_t test_size = 1024;
  std::int64_t n_logs = 64;
  std::int64_t attack_samples = 1024;
  std::int64_t attack_steps = 100;
  double attack_eps = 4.0 / 255.0;
  std::int64_t pc1_samples = 64;
  std::int64_t log_every = 0;             // > 0: log every this many epochs instead
  std::string attack_space = "pixel";     // or "normalised", as the authors' AutoAttack call
  std::string measure_on = "last_batch";  // alignment and PC1: or "test"
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Settings, lambda_jac, loss_fn, lr, weight_decay, batch_size,
                                   clip_grad_value, epochs, init_scale, dataset, train_size,
                                   test_size, n_logs, attack_samples, attack_steps, attack_eps,
                                   pc1_samples, log_every, attack_space, measure_on)

Settings preset(const std::string& name) {
  Settings s;  // the paper's
  s.n_logs = 128;
  s.attack_space = "normalised";
  if (name == "smoke") {
    s.train_size = s.test_size = 64;
    s.batch_size = 32;
    s.epochs = 3;
    s.n_logs = 3;
    s.attack_samples = 16;
    s.attack_steps = 4;
    s.pc1_samples = 8;
    s.attack_space = "pixel";
  } else if (name != "paper") {  // cpu: a large initial scale decayed away (see the top)
    s.dataset = "mnist";
    s.train_size = 256;
    s.batch_size = 64;
    s.init_scale = 1.5;
    s.weight_decay = 0.2;
    s.epochs = 400;
    s.log_every = 10;
    s.attack_eps = 0.1;
    s.attack_samples = 128;
    s.attack_steps = 10;
    s.attack_space = "pixel";
  }
  return s;
}

// The data set to use: the one named, or CIFAR-10 when present, else Fashion-MNIST, else MNIST.
std::string choose_dataset(const std::string& wanted, const std::filesystem::path& dir) {
  if (wanted != "auto") return wanted;
  for (const char* name : {"cifar10", "fashion-mnist"})
    if (dataset_available(name, dir)) return name;
  return "mnist";
}

// Per-channel normalisation constants: the reference's for CIFAR-10 and MNIST, the usual
// Fashion-MNIST ones (mean 0.2860, std 0.3530) for Fashion-MNIST.
struct Normalisation {
  std::vector<double> mean, std;
};
Normalisation normalisation_for(const std::string& name) {
  if (name == "cifar10") return {{0.4914, 0.4822, 0.4465}, {0.2471, 0.2435, 0.2616}};
  if (name == "fashion-mnist") return {{0.2860}, {0.3530}};
  return {{0.1307}, {0.3081}};
}

// The CNN preceded by its normalisation, as a model of pixels: what the attack sees.
template <Scalar T>
struct PixelModel {
  nn::Sequential<T>& cnn;
  Var<T> shift, scale;  // [1, C, 1, 1]: mean and 1/std
  template <class X>
  X operator()(const X& x) const {
    return cnn((x - lift<X>(shift)) * lift<X>(scale));
  }
};

template <Scalar T>
int train(const Settings& s, const run::CommonOptions& common) {
  // Data.
  const auto data_dir = resolve_data_dir(common.data_dir);
  const std::string name = choose_dataset(s.dataset, data_dir);
  const auto train_set = load_dataset<T>(name, Split::kTrain, data_dir, s.train_size);
  const auto test_set = load_dataset<T>(name, Split::kTest, data_dir, s.test_size);
  const index_t channels = train_set.images.shape()[1], size = train_set.images.shape()[2];
  const Normalisation norm = normalisation_for(name);
  Tensor<T> shift = Tensor<T>::empty(Shape{1, channels, 1, 1}), scale = shift.clone();
  for (index_t c = 0; c < channels; ++c) {
    shift.data()[c] = static_cast<T>(norm.mean[c]);
    scale.data()[c] = static_cast<T>(1.0 / norm.std[c]);
  }
  auto normalised = [&](const Tensor<T>& px) {
    Tensor<T> out = Tensor<T>::empty(px.shape());
    const index_t plane = size * size;
    for (index_t i = 0; i < px.numel(); ++i) {
      const index_t c = (i / plane) % channels;
      out.data()[i] = (px.data()[i] - shift.data()[c]) * scale.data()[c];
    }
    return out;
  };
  const Tensor<T> x_train = normalised(train_set.images), x_test = normalised(test_set.images);
  const index_t n_attack = std::min<index_t>(s.attack_samples, test_set.size());
  const index_t n_pc1 = std::min<index_t>(s.pc1_samples, test_set.size());

  run::require_rows_for_every_rank(train_set.size(), s.batch_size,
                                   distributed::Communicator().size(), "training images");

  run::RunSpec spec;
  spec.program = "delayed_robustness";
  spec.settings = s;
  spec.data = {{"name", name},
               {"source", train_set.source},
               {"train", train_set.size()},
               {"test", test_set.size()},
               {"image", {channels, size, size}},
               {"normalisation", {{"mean", norm.mean}, {"std", norm.std}}}};
  spec.columns = {"epoch",
                  "train_loss",
                  "train_accuracy",
                  "test_accuracy",
                  "robust_accuracy",
                  "centroid_alignment",
                  "pc1"};
  spec.resumable_settings = {"epochs"};
  spec.total_steps = s.epochs;
  spec.step_name = "epoch";
  run::Run r(common, spec, run::default_out_dir("delayed_robustness"));
  r.message(fmt::format("data: {} ({} train / {} test, {}x{}x{}){}", name, train_set.size(),
                        test_set.size(), channels, size, size,
                        name == "cifar10" ? "" : " -- CIFAR-10 not found in " + data_dir.string()));

  // Model, optimiser and every generator the run draws from.
  Generator init_gen(common.seed), data_gen(common.seed + 1), proj_gen(common.seed + 2),
      attack_gen(common.seed + 3);
  auto cnn = nn::make_cnn<T>(channels, size, train_set.classes, init_gen);
  if (s.init_scale != 1.0) nn::scale_parameters(cnn, s.init_scale);
  const PixelModel<T> pixel_model{cnn, Var<T>(shift), Var<T>(scale)};
  AdamW<T> opt(cnn.trainable_parameters(), {.lr = s.lr, .weight_decay = s.weight_decay});
  BatchIterator<T> batches(x_train, train_set.labels,
                           {.batch_size = s.batch_size, .one_hot_classes = train_set.classes},
                           data_gen);
  run::TrainingState<T, AdamW<T>> state(
      cnn.named_parameters(), opt,
      {{"data", &data_gen}, {"proj", &proj_gen}, {"attack", &attack_gen}});
  const auto schedule = s.log_every > 0 ? run::LogSchedule::every(s.epochs, s.log_every)
                                        : run::LogSchedule::log_spaced(s.epochs, s.n_logs);
  if (r.resumed()) {
    state.restore(r.checkpoint());
    batches.restore(r.checkpoint().integers<std::int64_t>("batches.order"),
                    r.checkpoint().integer("batches.position"));
  }
  const bool mse_loss = s.loss_fn == "mse";
  distributed::DataParallel<T> dp(opt.parameters());  // under mpirun: data-parallel steps

  // Loss and accuracy over a whole set, 256 rows at a time, without a graph.
  auto evaluate = [&](const Tensor<T>& x, const std::vector<index_t>& labels) {
    double loss = 0, correct = 0;
    const index_t N = x.shape()[0], classes = train_set.classes;
    for (index_t start = 0; start < N; start += 256) {
      const index_t n = std::min<index_t>(256, N - start);
      const Tensor<T> out = cnn(Tensor<T>(x.rows(start, n)));
      const Indices y(std::vector<index_t>(labels.begin() + start, labels.begin() + start + n));
      const Tensor<T> l = mse_loss ? mse(out, one_hot<T>(y, classes)) : cross_entropy(out, y);
      loss += static_cast<double>(l.data()[0]) * static_cast<double>(n);
      correct += metrics::argmax_accuracy(out, y) * static_cast<double>(n);
    }
    return std::pair{loss / static_cast<double>(N), correct / static_cast<double>(N)};
  };

  // Under mpirun each rank evaluates its block of each set (training images, test images, the
  // attacked images, the PC1 images): every figure is a per-sample mean (PC1 too: the mean of
  // each image's own Jacobian's PC1, no principal component across images), so each block's
  // mean, weighted by its share of the set, is summed over the ranks in one allreduce. One
  // process evaluates everything, as before.
  const index_t pixels_per_image = test_set.images.numel() / test_set.size();
  const bool attack_normalised = s.attack_space == "normalised";
  const metrics::AttackOptions attack = {.eps = s.attack_eps,
                                         .steps = static_cast<int>(s.attack_steps),
                                         .require_clean_in_range = !attack_normalised};
  // What the attack perturbs: pixels through the normalising model (ours), or the normalised
  // images through the CNN itself (the authors').
  const Tensor<T>& attacked_images = attack_normalised ? x_test : test_set.images;
  auto attacked_model = [&](const auto& x) { return attack_normalised ? cnn(x) : pixel_model(x); };
  // Robust accuracy on this rank's block of the attacked images, each image attacked from the
  // random start it gets in one process. The attack draws pixels_per_image uniforms for each
  // image it attacks, in order, and attacks only the images classified correctly when clean:
  // so the ranks first add up their blocks' clean-correct counts, each skips the draws of the
  // blocks before its own, and every rank leaves attack_gen where one process leaves it.
  auto block_robust_accuracy = [&](const distributed::Shard& sh) {
    const Tensor<T> pixels = dp.rows(attacked_images.rows(0, n_attack), sh);
    // (sh is a block of the first n_attack images, not of the whole test set)
    const std::vector<index_t> labels(test_set.labels.begin() + sh.offset,
                                      test_set.labels.begin() + sh.offset + sh.rows);
    std::vector<double> clean_correct(static_cast<std::size_t>(dp.communicator().size()), 0.0);
    double& mine = clean_correct[static_cast<std::size_t>(dp.communicator().rank())];
    for (index_t start = 0; start < sh.rows; start += attack.batch) {  // as the attack batches
      const index_t n = std::min<index_t>(attack.batch, sh.rows - start);
      NoGradGuard no_graph;
      const Tensor<T> logits = attacked_model(Var<T>(Tensor<T>(pixels.rows(start, n)))).value();
      const Indices y(std::vector<index_t>(labels.begin() + start, labels.begin() + start + n));
      mine += static_cast<double>(
          std::llround(metrics::argmax_accuracy(logits, y) * static_cast<double>(n)));
    }
    const index_t own = std::llround(mine);
    dp.sum(clean_correct.data(), static_cast<std::int64_t>(clean_correct.size()));
    index_t before = 0, total = 0;  // counts: the sums of integers are exact
    for (int r = 0; r < dp.communicator().size(); ++r) {
      total += std::llround(clean_correct[static_cast<std::size_t>(r)]);
      if (r < dp.communicator().rank())
        before += std::llround(clean_correct[static_cast<std::size_t>(r)]);
    }
    const auto skip = [&](index_t images) {
      for (index_t i = 0; i < images * pixels_per_image; ++i) attack_gen.next_u64();
    };
    skip(before);
    Generator block_gen = attack_gen;
    double robust = 0;
    if (sh.rows) {
      const auto result =
          metrics::robust_accuracy<T>(attacked_model, pixels, labels, attack, block_gen);
      const auto attack_counted = std::llround(result.clean * static_cast<double>(sh.rows));
      if (attack_counted != own)
        throw Error("delayed_robustness",
                    "the attack found " + std::to_string(attack_counted) +
                        " images classified correctly when clean where the evaluation found " +
                        std::to_string(own));
      robust = result.robust;
    }
    skip(own);
    if (block_gen.state() != attack_gen.state())
      throw Error("delayed_robustness",
                  "the attack drew other than " + std::to_string(pixels_per_image) +
                      " uniforms per clean-correct image, so the ranks cannot give each image "
                      "its one-process random start");
    skip(total - before - own);
    return robust;
  };

  // The images alignment and PC1 are measured on: the epoch's last training batch (the
  // authors'; before training, the first batch's worth of training images) or test images.
  const bool measure_test = s.measure_on == "test";
  Tensor<T> last_batch = x_train.rows(0, std::min<index_t>(s.batch_size, x_train.dim(0))).clone();
  auto log_row = [&](std::int64_t epoch) {
    const Tensor<T> measured = measure_test ? Tensor<T>(x_test.rows(0, n_attack)) : last_batch;
    const index_t n_measured = measured.dim(0);
    const index_t n_pc1_here = std::min<index_t>(n_pc1, n_measured);
    const auto train = dp.shard(train_set.size()), test = dp.shard(test_set.size()),
               attacked = dp.shard(n_attack), aligned = dp.shard(n_measured),
               pc1_block = dp.shard(n_pc1_here);
    double means[6] = {0, 0, 0, 0, 0, 0};  // train loss, accuracies, robust, alignment, PC1
    if (train.rows) {
      const std::vector<index_t> labels = dp.rows(train_set.labels, train);
      const auto [loss, acc] = evaluate(dp.rows(x_train, train), labels);
      means[0] = dp.share_of(loss, train);
      means[1] = dp.share_of(acc, train);
    }
    if (test.rows) {
      const std::vector<index_t> labels = dp.rows(test_set.labels, test);
      means[2] = dp.share_of(evaluate(dp.rows(x_test, test), labels).second, test);
    }
    means[3] = dp.share_of(block_robust_accuracy(attacked), attacked);  // on every rank: collective
    if (aligned.rows) {
      const Tensor<T> x = dp.rows(measured, aligned);
      double alignment = 0;
      for (index_t start = 0; start < aligned.rows; start += 256) {
        const index_t n = std::min<index_t>(256, aligned.rows - start);
        alignment +=
            static_cast<double>(align::centroids<T>(cnn, x.rows(start, n)).alignment.array().sum());
      }
      means[4] = dp.share_of(alignment / static_cast<double>(aligned.rows), aligned);
    }
    if (pc1_block.rows)
      means[5] = dp.share_of(
          static_cast<double>(
              align::pc1<T>(cnn, dp.rows(measured.rows(0, n_pc1_here), pc1_block)).mean),
          pc1_block);
    dp.sum(means, 6);
    const auto [train_loss, train_acc, test_acc, robust, alignment, pc1] = means;
    r.log({static_cast<double>(epoch), train_loss, train_acc, test_acc, robust, alignment, pc1});
    r.progress().update(
        epoch,
        {{"loss", train_loss}, {"test", test_acc}, {"robust", robust}, {"align", alignment}});
  };
  auto checkpoint = [&](std::int64_t epoch) {
    if (!run::checkpoint_now(common, epoch, schedule.logs(epoch))) return;
    run::Checkpoint c = state.snapshot();
    c.put("batches.order", batches.order());
    c.put("batches.position", std::vector<std::int64_t>{batches.position()});
    r.save_checkpoint(c, epoch);
  };

  if (!r.resumed()) {
    log_row(0);
    checkpoint(0);
  }
  const auto named = cnn.named_parameters();
  for (std::int64_t epoch = r.start_step() + 1; epoch <= s.epochs; ++epoch) {
    double last_loss = 0;
    for (index_t b = 0; b < batches.batches_per_epoch(); ++b) {
      batches.next();
      // Under mpirun: this rank's rows of the batch, its share of the batch's loss.
      const auto shard = dp.shard(batches.inputs().shape()[0]);
      const Var<T> x(dp.rows(batches.inputs(), shard), s.lambda_jac > 0);
      const Var<T> out = cnn(x);
      Var<T> loss =
          dp.share_of(mse_loss ? mse(out, Var<T>(dp.rows(batches.targets(), shard)))
                               : cross_entropy(out, dp.rows(Indices(batches.labels()), shard)),
                      shard);
      if (b + 1 == batches.batches_per_epoch())  // on every rank: the sum is collective
        last_loss = dp.sum(static_cast<double>(loss.item()));
      if (s.lambda_jac > 0)
        loss = loss + align::grokalign_penalty_from(out, x, proj_gen, dp.penalty_options(shard)) *
                          static_cast<T>(s.lambda_jac);
      opt.zero_grad(true);
      loss.backward(opt.parameters());
      dp.reduce_gradients();
      if (common.nan_guard) {
        run::check_finite_loss(epoch, "loss", dp.sum(static_cast<double>(loss.item())));
        run::check_finite_gradients(epoch, named);
      }
      clip_grad_value(opt.parameters(), s.clip_grad_value);
      opt.step();
    }
    if (!measure_test && schedule.logs(epoch)) last_batch = batches.inputs().clone();
    if (schedule.logs(epoch))
      log_row(epoch);
    else
      r.progress().update(epoch, {{"batch_loss", last_loss}});
    checkpoint(epoch);
  }
  r.progress().finish();
  fmt::print("wrote {}\n", r.dir().string());
  return 0;
}

int main(int argc, char** argv) {
  return run::guarded_main([&] {
    CLI::App app(
        "GrokAlign Sec 4.3 (Fig 5): delayed robustness of a CNN, with and without the "
        "GrokAlign penalty");
    run::CommonOptions common;
    run::add_common_flags(app, common, {.dtype = "f32", .program = "delayed_robustness"});
    Settings s = preset("cpu");  // so --help shows the default size
    run::SettingsFlags<Settings> flags(app, s);
    flags.add("--lambda_jac", &Settings::lambda_jac, "Weight of the GrokAlign penalty (0: off)");
    flags.add("--loss_fn", &Settings::loss_fn, "Task loss: mse (one-hot targets) or ce")
        ->check(CLI::IsMember({"mse", "ce"}));
    flags.add("--lr", &Settings::lr, "AdamW learning rate");
    flags.add("--weight_decay", &Settings::weight_decay, "AdamW weight decay");
    flags.add("--batch_size", &Settings::batch_size, "Mini-batch size");
    flags.add("--clip_grad_value", &Settings::clip_grad_value,
              "Clamp each gradient entry to +-this");
    flags.add("--epochs", &Settings::epochs, "Training epochs");
    flags.add("--init_scale", &Settings::init_scale, "Multiply every initial parameter by this");
    flags
        .add("--dataset", &Settings::dataset,
             "auto (CIFAR-10 if present, else Fashion-MNIST, else MNIST), cifar10, "
             "fashion-mnist or mnist")
        ->check(CLI::IsMember({"auto", "cifar10", "fashion-mnist", "mnist"}));
    flags.add("--train_size", &Settings::train_size, "First N training images");
    flags.add("--test_size", &Settings::test_size, "First N test images");
    flags.add("--n_logs", &Settings::n_logs, "Log-spaced logging points");
    flags.add("--attack_samples", &Settings::attack_samples,
              "Test images attacked (and centroid alignment averaged over) at each log");
    flags.add("--attack_steps", &Settings::attack_steps, "APGD-CE iterations");
    flags.add("--attack_eps", &Settings::attack_eps,
              "L-inf radius of the attack, in the units of --attack_space");
    flags.add("--pc1_samples", &Settings::pc1_samples,
              "Images for PC1 (at most this many of the measured batch or test images)");
    flags.add("--log_every", &Settings::log_every,
              "Log every this many epochs instead (0: the log-spaced --n_logs)");
    flags
        .add("--attack_space", &Settings::attack_space,
             "pixel: attack the pixels in [0, 1] through a normalising model (ours); "
             "normalised: attack the normalised images, clamped to [0, 1] in those units, "
             "with eps in those units (the authors' AutoAttack call)")
        ->check(CLI::IsMember({"pixel", "normalised"}));
    flags
        .add("--measure_on", &Settings::measure_on,
             "Centroid alignment and PC1 on the epoch's last training batch (last_batch, as "
             "the authors) or on the first test images (test)")
        ->check(CLI::IsMember({"last_batch", "test"}));
    if (int rc = run::parse_flags(app, argc, argv, &common); rc >= 0) return rc;
    flags.apply(preset(common.smoke ? "smoke" : common.preset), common);
    run::require_nonnegative("--lambda_jac", s.lambda_jac);
    run::require_positive("--lr", s.lr);
    run::require_nonnegative("--weight_decay", s.weight_decay);
    run::require_positive("--batch_size", static_cast<double>(s.batch_size));
    run::require_positive("--clip_grad_value", s.clip_grad_value);
    run::require_positive("--epochs", static_cast<double>(s.epochs));
    run::require_positive("--init_scale", s.init_scale);
    run::require_positive("--train_size", static_cast<double>(s.train_size));
    run::require_positive("--test_size", static_cast<double>(s.test_size));
    run::require_nonnegative("--n_logs", static_cast<double>(s.n_logs));
    run::require_positive("--attack_samples", static_cast<double>(s.attack_samples));
    run::require_positive("--attack_steps", static_cast<double>(s.attack_steps));
    run::require_nonnegative("--attack_eps", s.attack_eps);
    run::require_positive("--pc1_samples", static_cast<double>(s.pc1_samples));
    run::require_nonnegative("--log_every", static_cast<double>(s.log_every));
    return run::with_dtype(common.dtype, [&]<class T>() { return train<T>(s, common); });
  });
}
