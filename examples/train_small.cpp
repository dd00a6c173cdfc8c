// A complete small training program, top to bottom: generate data, build an MLP, train it
// with cross-entropy plus the GrokAlign penalty (AdamW, a warm-up + cosine learning-rate
// schedule), measure accuracy and centroid alignment, save the model and the optimiser
// state, reload both into fresh objects and check the reloaded model gives the same outputs.
// Runs in a second or two; exits non-zero if the model did not learn or the reload differs.
//
//   train_small [output folder]     (default: a folder under the system temp directory)
#include <grokalign/distributed/communicator.hpp>
#include <grokalign/grokalign.hpp>

#include <cstdio>
#include <filesystem>
#include <vector>

namespace ga = grokalign;
using T = double;  // float works too: every type below is templated on it

namespace {

struct Dataset {
  ga::Tensor<T> x;  // [n, dim]
  ga::Indices y;    // [n] class labels
};

// Gaussian blobs: `classes` random centres in `dim` dimensions, unit noise around each.
Dataset make_blobs(ga::index_t n, ga::index_t dim, ga::index_t classes, double spread,
                   const ga::Tensor<T>& centres, ga::Generator& gen) {
  Dataset d{ga::randn<T>({n, dim}, gen), {}};
  std::vector<ga::index_t> labels(n);
  for (ga::index_t i = 0; i < n; ++i) {
    labels[i] = static_cast<ga::index_t>(gen.below(classes));
    d.x.matrix().row(i) += spread * centres.matrix().row(labels[i]);
  }
  d.y = ga::Indices(labels);
  return d;
}

}  // namespace

int main(int argc, char** argv) {
  // Under mpirun rank 0 alone runs this tour: it has nothing to share out over ranks.
  if (grokalign::distributed::launcher_rank() > 0) return 0;
  const std::filesystem::path out_dir =
      argc > 1 ? std::filesystem::path(argv[1])
               : std::filesystem::temp_directory_path() / "grokalign_train_small";

  // --- data ------------------------------------------------------------------------------
  ga::Generator gen(7);  // every random draw below comes from this seed
  const ga::index_t dim = 16, classes = 4;
  const auto centres = ga::randn<T>({classes, dim}, gen);
  const Dataset train = make_blobs(512, dim, classes, 0.8, centres, gen);
  const Dataset test = make_blobs(512, dim, classes, 0.8, centres, gen);

  // --- model and optimiser ---------------------------------------------------------------
  // depth = number of Linear layers: 16 -> 64 -> 64 -> 4, ReLU between them.
  auto model = ga::nn::make_mlp<T>(dim, 64, /*depth=*/3, classes, /*bias=*/true, gen);
  const auto params = model.trainable_parameters();
  ga::AdamW<T> opt(params, {.lr = 3e-3, .weight_decay = 1e-2});
  const int epochs = 40, batch = 64;
  const int steps_per_epoch = static_cast<int>(train.x.dim(0) / batch);
  auto schedule = ga::warmup_cosine_lr(opt, /*warmup=*/steps_per_epoch,
                                       /*t_max=*/(epochs - 1) * steps_per_epoch);
  const double lambda_jac = 1e-3;  // GrokAlign penalty weight

  // --- training --------------------------------------------------------------------------
  for (int epoch = 0; epoch < epochs; ++epoch) {
    double loss_sum = 0, penalty_sum = 0;
    for (int b = 0; b < steps_per_epoch; ++b) {
      const ga::Tensor<T> xb = train.x.rows(b * batch, batch);  // a view, no copy
      const ga::Indices yb(std::vector<ga::index_t>(train.y.values->begin() + b * batch,
                                                    train.y.values->begin() + (b + 1) * batch));
      const ga::Var<T> x(xb, /*requires_grad=*/true);  // the penalty differentiates in x
      const ga::Var<T> logits = model(x);
      // GrokAlign: an estimate of the mean Jacobian norm |J(x_b)|_F, differentiable in the
      // weights (docs/alignment.md).
      const ga::Var<T> penalty = ga::align::grokalign_penalty_from(logits, x, gen);
      const ga::Var<T> loss = ga::cross_entropy(logits, yb) + penalty * lambda_jac;
      opt.zero_grad();
      loss.backward(params);  // weight gradients only; x's gradient is never formed
      opt.step();
      schedule.step();
      loss_sum += loss.item();
      penalty_sum += penalty.item();
    }
    if (epoch % 10 == 9 || epoch == 0) {
      // Evaluating on a Tensor records nothing (no graph), like torch.no_grad().
      const double train_acc = ga::metrics::argmax_accuracy(model(train.x), train.y);
      const double test_acc = ga::metrics::argmax_accuracy(model(test.x), test.y);
      std::printf("epoch %2d  loss %.4f  |J| %.2f  lr %.2e  train acc %.3f  test acc %.3f\n",
                  epoch + 1, loss_sum / steps_per_epoch, penalty_sum / steps_per_epoch, opt.lr(),
                  train_acc, test_acc);
    }
  }

  // --- measurements ----------------------------------------------------------------------
  const double test_acc = ga::metrics::argmax_accuracy(model(test.x), test.y);
  const auto c = ga::align::centroids(model, test.x.rows(0, 128));
  std::printf("test accuracy %.3f, mean centroid alignment %.3f\n", test_acc,
              c.alignment.array().mean());

  // --- save and reload -------------------------------------------------------------------
  ga::save_state_dict(out_dir / "model", model);         // 0.weight.npy, 0.bias.npy, ...
  ga::save_optimizer_state(out_dir / "optimizer", opt);  // 0.exp_avg.npy, 0.step.npy, lr.npy
  ga::Generator other(123);                              // a fresh model with different weights...
  auto reloaded = ga::nn::make_mlp<T>(dim, 64, 3, classes, true, other);
  ga::AdamW<T> reloaded_opt(reloaded.trainable_parameters(), {.weight_decay = 1e-2});
  ga::load_state_dict(out_dir / "model", reloaded);  // ...takes the saved ones
  ga::load_optimizer_state(out_dir / "optimizer", reloaded_opt);
  const bool same = model(test.x).to_vector() == reloaded(test.x).to_vector();
  std::printf("saved to %s; reloaded model outputs %s, optimiser lr %.2e and step %lld\n",
              out_dir.string().c_str(), same ? "identical" : "DIFFERENT", reloaded_opt.lr(),
              static_cast<long long>(reloaded_opt.state(0).step));
  return same && test_acc > 0.9 ? 0 : 1;
}
