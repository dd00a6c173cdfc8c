// Learning-rate schedules against PyTorch's formulas, worked by hand below (the values
// torch.optim.lr_scheduler prints for the same settings), applied through set_lr.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include <grokalign/core.hpp>
#include <grokalign/optim.hpp>
#include <grokalign/reverse.hpp>

namespace ga = grokalign;

namespace {

ga::Var<double> one_param() {
  return ga::Var<double>(ga::Tensor<double>::zeros({2}), true);
}

// The lr the optimiser holds at epochs 0, 1, ... as scheduler.step() is called.
std::vector<double> lrs(ga::Optimizer<double>& opt, ga::LrScheduler<double>& s, int epochs) {
  std::vector<double> out{opt.lr()};
  for (int e = 1; e < epochs; ++e) {
    s.step();
    out.push_back(opt.lr());
  }
  return out;
}

void check_schedule(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("epoch " << i);
    CHECK(got[i] == Approx(want[i]).epsilon(1e-12).margin(1e-15));
  }
}

}  // namespace

TEST_CASE("step_lr: StepLR(step_size=3, gamma=0.5) from lr 0.1", "[optim][schedule]") {
  ga::SGD<double> opt({one_param()}, {.lr = 0.1});
  auto s = ga::step_lr(opt, 3, 0.5);
  check_schedule(lrs(opt, s, 7), {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025});
}

TEST_CASE("cosine_lr: CosineAnnealingLR(T_max=4, eta_min=0.1) from lr 1", "[optim][schedule]") {
  ga::AdamW<double> opt({one_param()}, {.lr = 1.0});
  auto s = ga::cosine_lr(opt, 4, 0.1);
  // 0.1 + 0.9 (1 + cos(pi e / 4)) / 2; cos(pi/4) = 0.70710678118654752.
  check_schedule(lrs(opt, s, 6), {1.0, 0.1 + 0.45 * 1.70710678118654752, 0.55,
                                  0.1 + 0.45 * 0.29289321881345248, 0.1, 0.1});
}

TEST_CASE("linear_lr and warmup_lr: LinearLR(start_factor=1/3, total_iters=5) from lr 0.3",
          "[optim][schedule]") {
  const std::vector<double> want{0.1, 0.14, 0.18, 0.22, 0.26, 0.3, 0.3};
  ga::AdamW<double> a({one_param()}, {.lr = 0.3});
  auto linear = ga::linear_lr(a, 1.0 / 3, 1.0, 5);
  check_schedule(lrs(a, linear, 7), want);
  ga::AdamW<double> b({one_param()}, {.lr = 0.3});
  auto warm = ga::warmup_lr(b, 5);
  check_schedule(lrs(b, warm, 7), want);
  // Decay to a fraction: end_factor 0.5 over 2 epochs from lr 1.
  ga::AdamW<double> c({one_param()}, {.lr = 1.0});
  auto down = ga::linear_lr(c, 1.0, 0.5, 2);
  check_schedule(lrs(c, down, 4), {1.0, 0.75, 0.5, 0.5});
}

TEST_CASE("warmup_cosine_lr: two warm-up epochs, then cosine over 2", "[optim][schedule]") {
  ga::AdamW<double> opt({one_param()}, {.lr = 1.0});
  auto s = ga::warmup_cosine_lr(opt, 2, 2, 0.0, 0.5);
  check_schedule(lrs(opt, s, 6), {0.5, 0.75, 1.0, 0.5, 0.0, 0.0});
}

TEST_CASE("set_epoch resumes a schedule; the base lr is the one it was made with",
          "[optim][schedule]") {
  ga::SGD<double> opt({one_param()}, {.lr = 0.1});
  auto s = ga::step_lr(opt, 3, 0.5);
  s.set_epoch(6);
  CHECK(opt.lr() == Approx(0.025));
  CHECK(s.epoch() == 6);
  CHECK(s.base_lr() == 0.1);
  // A scheduler made on an optimiser whose lr has already decayed takes the base explicitly.
  ga::LrScheduler<double> again(
      opt, [](double base, std::int64_t e) { return ga::schedule::step(base, e, 3, 0.5); }, 0.1);
  again.set_epoch(3);
  CHECK(opt.lr() == Approx(0.05));
}

TEST_CASE("schedules refuse bad settings under their own names", "[optim][schedule][errors]") {
  ga::SGD<double> opt({one_param()}, {.lr = 0.1});
  CHECK_THROWS_WITH(ga::step_lr(opt, 0),
                    Catch::Contains("step_lr") && Catch::Contains("step_size"));
  CHECK_THROWS_WITH(ga::cosine_lr(opt, 0), Catch::Contains("cosine_lr"));
  CHECK_THROWS_WITH(ga::linear_lr(opt, 0.0), Catch::Contains("start_factor"));
  CHECK_THROWS_WITH(ga::warmup_lr(opt, 0), Catch::Contains("warmup_lr"));
  auto s = ga::step_lr(opt, 2);
  CHECK_THROWS_WITH(s.set_epoch(-1), Catch::Contains("negative"));
  // A rule giving a negative lr is refused by set_lr, naming the optimiser.
  CHECK_THROWS_WITH(ga::LrScheduler<double>(opt, [](double, std::int64_t) { return -1.0; }),
                    Catch::Contains("SGD") && Catch::Contains("lr"));
}
