// Optimiser state as .npy directories: a saved and reloaded optimiser continues exactly as
// the original; counters, buffers that do not exist yet, the learning rate; refusals that
// leave the optimiser unchanged.
#include <catch2/catch.hpp>

#include <filesystem>
#include <grokalign/io/npy.hpp>
#include <grokalign/io/optimizer_state.hpp>
#include <grokalign/optim.hpp>
#include <vector>

#include "temp_dir.hpp"

using namespace grokalign;
using Catch::Matchers::Contains;
using grokalign_test::TempDir;

namespace {

std::vector<Var<double>> make_params() {
  return {Var<double>(Tensor<double>::from({2, 2}, {1, -2, 3, 0.5}), true),
          Var<double>(Tensor<double>::from({3}, {0.1, 0.2, -0.3}), true)};
}

// A gradient that depends on the step, so that moments differ from step to step.
void set_grads(std::vector<Var<double>>& ps, int step) {
  for (std::size_t i = 0; i < ps.size(); ++i) {
    auto g = Tensor<double>::empty(ps[i].shape());
    for (index_t k = 0; k < g.numel(); ++k)
      g.data()[k] = std::sin(1.0 + step + 0.7 * static_cast<double>(k) + static_cast<double>(i));
    ps[i].set_grad(g);
  }
}

std::vector<double> flat(const std::vector<Var<double>>& ps) {
  std::vector<double> out;
  for (const auto& p : ps)
    for (double v : p.value().to_vector()) out.push_back(v);
  return out;
}

// Copies of the parameters' values, as a reloaded model would have them.
std::vector<Var<double>> copy_of(const std::vector<Var<double>>& ps) {
  std::vector<Var<double>> out;
  for (const auto& p : ps) out.emplace_back(p.value().clone(), true);
  return out;
}

}  // namespace

TEST_CASE("AdamW reloaded from its state continues bit for bit", "[io][optim][state]") {
  TempDir dir;
  auto a = make_params();
  AdamW<double> opt(a, {.lr = 0.01, .weight_decay = 0.1});
  for (int s = 0; s < 3; ++s) {
    set_grads(a, s);
    opt.step();
  }
  opt.set_lr(0.005);
  save_optimizer_state(dir.path(), opt);
  CHECK(std::filesystem::exists(dir / "0.exp_avg.npy"));
  CHECK(load_npy<double>(dir / "1.step.npy").item() == 3);

  auto b = copy_of(a);
  AdamW<double> reloaded(b, {.lr = 0.01, .weight_decay = 0.1});
  load_optimizer_state(dir.path(), reloaded);
  CHECK(reloaded.lr() == 0.005);
  CHECK(reloaded.state(0).step == 3);
  for (int s = 3; s < 6; ++s) {
    set_grads(a, s);
    set_grads(b, s);
    opt.step();
    reloaded.step();
  }
  CHECK(flat(a) == flat(b));
}

TEST_CASE("SGD momentum and a GrokfastMa window round-trip; missing buffers stay missing",
          "[io][optim][state]") {
  TempDir dir;
  auto a = make_params();
  SGD<double> opt(a, {.lr = 0.1, .momentum = 0.9});
  set_grads(a, 0);
  opt.step();
  save_optimizer_state(dir / "sgd", opt);
  auto b = copy_of(a);
  SGD<double> reloaded(b, {.lr = 0.1, .momentum = 0.9});
  load_optimizer_state(dir / "sgd", reloaded);
  set_grads(a, 1);
  set_grads(b, 1);
  opt.step();
  reloaded.step();
  CHECK(flat(a) == flat(b));

  // Fresh state (no step yet): nothing but the lr is written, and loading it keeps the
  // buffers undefined.
  SGD<double> fresh(copy_of(a), {.lr = 0.1, .momentum = 0.9});
  save_optimizer_state(dir / "fresh", fresh);
  CHECK(!std::filesystem::exists(dir / "fresh" / "0.momentum_buffer.npy"));
  load_optimizer_state(dir / "fresh", reloaded);
  CHECK(!reloaded.state(0).momentum_buffer.defined());

  auto c = make_params();
  GrokfastMa<double> ma(c, 3, 2.0);
  for (int s = 0; s < 2; ++s) {
    set_grads(c, s);
    ma.apply();
  }
  save_optimizer_state(dir / "ma", ma);
  auto d = copy_of(c);
  GrokfastMa<double> ma2(d, 3, 2.0);
  load_optimizer_state(dir / "ma", ma2);
  CHECK(ma2.count(0) == 2);
  for (int s = 2; s < 5; ++s) {
    set_grads(c, s);
    set_grads(d, s);
    ma.apply();
    ma2.apply();
    CHECK(c[0].grad().to_vector() == d[0].grad().to_vector());
  }
}

TEST_CASE("saving over an older state removes buffers that no longer exist", "[io][optim][state]") {
  TempDir dir;
  auto a = make_params();
  AdamW<double> opt(a);
  set_grads(a, 0);
  opt.step();
  save_optimizer_state(dir.path(), opt);
  AdamW<double> fresh(copy_of(a));
  save_optimizer_state(dir.path(), fresh);
  CHECK(!std::filesystem::exists(dir / "0.exp_avg.npy"));
  load_optimizer_state(dir.path(), opt);
  CHECK(opt.state(0).step == 0);
  CHECK(!opt.state(0).exp_avg.defined());
}

TEST_CASE("refused loads name the file and leave the optimiser unchanged",
          "[io][optim][state][errors]") {
  TempDir dir;
  auto a = make_params();
  AdamW<double> adam(a, {.lr = 0.01});
  set_grads(a, 0);
  adam.step();
  save_optimizer_state(dir / "adam", adam);

  SGD<double> sgd(copy_of(a), {.lr = 0.1, .momentum = 0.9});
  CHECK_THROWS_WITH(load_optimizer_state(dir / "adam", sgd), Contains("load_optimizer_state") &&
                                                                 Contains("0.exp_avg.npy") &&
                                                                 Contains("match no state"));
  CHECK(sgd.lr() == 0.1);

  // A corrupt counter and a buffer of the wrong shape.
  AdamW<double> other(copy_of(a), {.lr = 0.02});
  save_npy(dir / "adam" / "1.step.npy", Tensor<double>::scalar(2.5));
  CHECK_THROWS_WITH(load_optimizer_state(dir / "adam", other),
                    Contains("1.step.npy") && Contains("not a non-negative integer"));
  save_npy(dir / "adam" / "1.step.npy", Tensor<double>::scalar(1));
  save_npy(dir / "adam" / "0.exp_avg.npy", Tensor<double>::zeros({4}));
  CHECK_THROWS_WITH(load_optimizer_state(dir / "adam", other), Contains("0.exp_avg.npy"));
  CHECK(other.lr() == 0.02);
  CHECK(other.state(1).step == 0);

  std::filesystem::remove(dir / "adam" / "0.step.npy");
  CHECK_THROWS_WITH(load_optimizer_state(dir / "adam", other), Contains("0.step.npy"));
  CHECK_THROWS_WITH(load_optimizer_state(dir / "nowhere", other), Contains("not a directory"));
}
