// AdamW against the textbook formula (m_hat / (sqrt(v_hat) + eps), computed here with plain
// doubles), per-parameter state of different shapes and step counts, float parameters,
// and option validation.
#include "optim_helpers.hpp"

using namespace grokalign;
using namespace optim_test;
using Catch::Contains;

namespace {

// One parameter's AdamW trajectory. `grads[k]` empty means "no gradient at step k": the
// parameter and its state, including its step count, stay as they are.
Vec reference_adamw(Vec theta, const std::vector<Vec>& grads, const AdamWOptions& o) {
  Vec m(theta.size(), 0.0), v(theta.size(), 0.0);
  int t = 0;
  for (const Vec& g : grads) {
    if (g.empty()) continue;
    ++t;
    for (std::size_t j = 0; j < theta.size(); ++j) {
      theta[j] *= 1 - o.lr * o.weight_decay;
      m[j] = o.beta1 * m[j] + (1 - o.beta1) * g[j];
      v[j] = o.beta2 * v[j] + (1 - o.beta2) * g[j] * g[j];
      const double m_hat = m[j] / (1 - std::pow(o.beta1, t));
      const double v_hat = v[j] / (1 - std::pow(o.beta2, t));
      theta[j] -= o.lr * m_hat / (std::sqrt(v_hat) + o.eps);
    }
  }
  return theta;
}

const Vec kTheta0{0.5, -1.0, 2.0, 0.0};
const std::vector<Vec> kGrads{
    {0.1, -0.2, 0.3, 0.0}, {-0.4, 0.5, 0.6, 1e-3}, {0.7, -0.8, -0.9, 2.0}};

}  // namespace

TEST_CASE("AdamW matches the formula over three steps", "[optim][adamw]") {
  const AdamWOptions cases[] = {
      {},  // PyTorch's defaults
      {.lr = 0.01, .beta1 = 0.8, .beta2 = 0.98, .eps = 1e-6, .weight_decay = 1.0},
      {.lr = 0.1, .beta1 = 0.0, .beta2 = 0.5, .eps = 1e-3, .weight_decay = 0.0},
  };
  for (const AdamWOptions& o : cases) {
    INFO("lr " << o.lr << " betas " << o.beta1 << ", " << o.beta2 << " wd " << o.weight_decay);
    const Vec want = reference_adamw(kTheta0, kGrads, o);

    auto p = param(Shape{2, 2}, kTheta0);
    auto pf = param<float>(Shape{2, 2}, kTheta0);
    AdamW<double> opt({p}, o);
    AdamW<float> optf({pf}, o);
    for (const Vec& g : kGrads) {
      give_grad(p, g);
      give_grad(pf, g);
      opt.step();
      optf.step();
    }
    check_close(p.value(), want, 1e-12);
    check_close(pf.value(), want, 2e-6);
    CHECK(opt.state(0).step == 3);
  }

  SECTION("first step without decay moves each entry by about lr against its gradient sign") {
    auto p = param(Vec{1.0, 1.0, 1.0});
    AdamW<double> opt({p}, {.lr = 0.01, .weight_decay = 0});
    give_grad(p, {3.0, -1e-3, 0.0});
    opt.step();
    // m_hat = g and v_hat = g^2 at t = 1, so the step is lr * g / (|g| + eps).
    check_close(p.value(),
                {1.0 - 0.01 * 3.0 / (3.0 + 1e-8), 1.0 + 0.01 * 1e-3 / (1e-3 + 1e-8), 1.0}, 1e-15);
  }
  SECTION("the gradient itself is not modified") {
    auto p = param(kTheta0);
    AdamW<double> opt({p});
    give_grad(p, kGrads[0]);
    opt.step();
    check_close(p.grad(), kGrads[0], 0);
  }
}

TEST_CASE("AdamW keeps state aligned per parameter", "[optim][adamw]") {
  // Two parameters of different shapes; the second misses the middle step, so it takes two
  // steps with its own bias correction while the first takes three.
  const AdamWOptions o{.lr = 0.05, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8, .weight_decay = 0.1};
  const Vec a0{0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, b0{-1.0, 1.0, 2.0, -2.0};
  const std::vector<Vec> ga{{1, 2, 3, 4, 5, 6}, {-1, 0.5, 0, 2, -3, 1}, {0.1, 0.1, -0.1, 0, 0, 1}};
  const std::vector<Vec> gb{{0.5, -0.5, 1.0, 2.0}, {}, {-1.0, 0.25, 0.5, 0.0}};

  auto a = param(Shape{2, 3}, a0);
  auto b = param(Shape{4}, b0);
  AdamW<double> opt({a, b}, o);
  for (std::size_t k = 0; k < ga.size(); ++k) {
    give_grad(a, ga[k]);
    if (gb[k].empty())
      b.set_grad(Tensor<double>());  // as after zero_grad(set_to_none) with no path to b
    else
      give_grad(b, gb[k]);
    opt.step();
  }
  check_close(a.value(), reference_adamw(a0, ga, o), 1e-12);
  check_close(b.value(), reference_adamw(b0, gb, o), 1e-12);

  CHECK(opt.state(0).step == 3);
  CHECK(opt.state(1).step == 2);
  CHECK(opt.state(0).exp_avg.shape() == Shape{2, 3});
  CHECK(opt.state(0).exp_avg_sq.shape() == Shape{2, 3});
  CHECK(opt.state(1).exp_avg.shape() == Shape{4});
  CHECK(opt.state(1).exp_avg_sq.shape() == Shape{4});
  // m after the second parameter's two steps: 0.9 * (0.1 * g1) + 0.1 * g3.
  check_close(opt.state(1).exp_avg, {-0.055, -0.02, 0.14, 0.18}, 1e-14);
  CHECK_THROWS_WITH(opt.state(2), Contains("AdamW") && Contains("2"));
}

TEST_CASE("AdamW refuses bad options", "[optim][adamw][errors]") {
  auto p = param(Vec{1.0});
  const std::vector<Var<double>> ps{p};
  CHECK_THROWS_WITH(AdamW<double>(ps, {.lr = -1e-3}), Contains("AdamW") && Contains("lr"));
  CHECK_THROWS_WITH(AdamW<double>(ps, {.beta1 = 1.0}), Contains("AdamW") && Contains("beta1"));
  CHECK_THROWS_WITH(AdamW<double>(ps, {.beta1 = -0.1}), Contains("AdamW") && Contains("beta1"));
  CHECK_THROWS_WITH(AdamW<double>(ps, {.beta2 = 1.5}), Contains("AdamW") && Contains("beta2"));
  CHECK_THROWS_WITH(AdamW<double>(ps, {.beta2 = std::nan("")}),
                    Contains("AdamW") && Contains("beta2"));
  CHECK_THROWS_WITH(AdamW<double>(ps, {.eps = 0.0}), Contains("AdamW") && Contains("eps"));
  CHECK_THROWS_WITH(AdamW<double>(ps, {.eps = -1e-8}), Contains("AdamW") && Contains("eps"));
  CHECK_THROWS_WITH(AdamW<double>(ps, {.weight_decay = -0.01}),
                    Contains("AdamW") && Contains("weight_decay"));
  CHECK_THROWS_AS(AdamW<double>(ps, {.lr = INFINITY}), Error);
  CHECK_NOTHROW(AdamW<double>(ps, {.lr = 0.0, .beta1 = 0.0, .beta2 = 0.0, .weight_decay = 0.0}));

  AdamW<double> opt(ps);
  CHECK_THROWS_WITH(opt.set_lr(-1), Contains("AdamW") && Contains("lr"));
  CHECK(opt.lr() == 1e-3);
  // Through the base class, as a learning-rate schedule would.
  Optimizer<double>& base = opt;
  base.set_lr(5e-4);
  CHECK(opt.options().lr == 5e-4);
  CHECK(std::string(base.name()) == "AdamW");
}
