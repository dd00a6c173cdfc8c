// L-infinity attacks on hand-made cases. On a linear two-class model the worst case in the
// eps-ball intersected with [lo, hi] is known in closed form (move every coordinate against
// the weight's sign as far as the box allows), so PGD and APGD-CE must reach exactly that
// loss and that robust accuracy. Both stay inside the ball and the range, never end below
// the clean loss, cost one forward and one backward pass per iteration, and on a small MLP
// APGD-CE is at least as strong as PGD with the same number of iterations.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <grokalign/grokalign.hpp>
#include <grokalign/metrics.hpp>
#include <grokalign/nn.hpp>

#include "expect_error.hpp"

namespace ga = grokalign;
namespace gm = grokalign::metrics;
using metrics_test::expect_error;
using Tensor = ga::Tensor<double>;
using Var = ga::Var<double>;

namespace {

// Two classes with logits ((x - 0.5) w, -(x - 0.5) w) for inputs [B, 1, 2, 2] (flattened
// to 4): the logit gap of class 0 over class 1 is 2 m with m = (x - 0.5) . w.
const std::vector<double> kW = {1.0, -1.0, 0.5, 0.0};

auto fragile_model() {
  const Tensor W =
      Tensor::from({2, 4}, {kW[0], kW[1], kW[2], kW[3], -kW[0], -kW[1], -kW[2], -kW[3]});
  return [W](const auto& x) {
    return ga::matmul(ga::flatten(x) - 0.5, ga::constant_like(x, W), false, true);
  };
}

double softplus(double z) {
  return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
}

struct LinearCase {
  Tensor x;                         // [B, 1, 2, 2] in [0, 1]
  std::vector<ga::index_t> labels;  // the clean prediction: every point starts correct
  std::vector<double> worst_loss;   // the exact maximum of the loss over the ball and box
  std::vector<double> clean_loss;
  std::vector<char> robust;  // the worst case is still classified correctly
};

LinearCase make_linear_case(double eps, ga::Generator& gen) {
  LinearCase c;
  const ga::index_t B = 40;
  c.x = Tensor::empty({B, 1, 2, 2});
  for (ga::index_t b = 0; b < B; ++b) {
    double m = 0, room_sum = 0;
    do {  // keep away from the boundary of robustness so the answer is unambiguous
      m = 0;
      room_sum = 0;
      for (int j = 0; j < 4; ++j) c.x.data()[b * 4 + j] = gen.uniform();
      for (int j = 0; j < 4; ++j) m += (c.x.data()[b * 4 + j] - 0.5) * kW[j];
      for (int j = 0; j < 4; ++j) {
        // The attack pushes coordinate j by -sign(m w_j), as far as eps and [0, 1] allow.
        const double v = c.x.data()[b * 4 + j], dir = -(m > 0 ? 1 : -1) * (kW[j] > 0 ? 1 : -1);
        const double room = std::min(eps, dir > 0 ? 1 - v : v);
        room_sum += std::abs(kW[j]) * room;
      }
    } while (std::abs(m) < 0.02 || std::abs(std::abs(m) - room_sum) < 0.02);
    c.labels.push_back(m > 0 ? 0 : 1);
    const double worst_margin = std::abs(m) - room_sum;  // of the true class, halved
    c.worst_loss.push_back(softplus(-2 * worst_margin));
    c.clean_loss.push_back(softplus(-2 * std::abs(m)));
    c.robust.push_back(worst_margin > 0);
  }
  return c;
}

void check_in_ball(const Tensor& adv, const Tensor& x, double eps, double lo, double hi) {
  REQUIRE(adv.shape() == x.shape());
  double worst_dist = 0, below = 0, above = 0;
  for (ga::index_t i = 0; i < x.numel(); ++i) {
    worst_dist = std::max(worst_dist, std::abs(adv.data()[i] - x.data()[i]));
    below = std::max(below, lo - adv.data()[i]);
    above = std::max(above, adv.data()[i] - hi);
  }
  CHECK(worst_dist <= eps * (1 + 1e-12));
  CHECK(below <= 0);
  CHECK(above <= 0);
}

// Per-sample cross-entropy of a model's logits (no graph).
template <class Model>
std::vector<double> ce_rows(Model& model, const Tensor& x, const std::vector<ga::index_t>& y) {
  const Tensor logits = model(x);
  std::vector<double> out;
  for (ga::index_t b = 0; b < logits.dim(0); ++b) {
    double m = -1e300, s = 0;
    for (ga::index_t c = 0; c < logits.dim(1); ++c) m = std::max(m, logits.at(b, c));
    for (ga::index_t c = 0; c < logits.dim(1); ++c) s += std::exp(logits.at(b, c) - m);
    out.push_back(m + std::log(s) - logits.at(b, y[b]));
  }
  return out;
}

}  // namespace

TEST_CASE("attacks reach the exact worst case of a fragile linear model", "[metrics]") {
  ga::Generator data_gen(1);
  const double eps = 0.1;
  const LinearCase c = make_linear_case(eps, data_gen);
  const auto model = fragile_model();
  double expected_robust = 0;
  for (char r : c.robust) expected_robust += r;
  expected_robust /= static_cast<double>(c.robust.size());
  REQUIRE(expected_robust > 0.2);  // the case has both fragile and robust points
  REQUIRE(expected_robust < 0.8);

  for (auto kind : {gm::AttackKind::kPgd, gm::AttackKind::kApgdCe}) {
    for (bool random_start : {false, true}) {
      INFO((kind == gm::AttackKind::kPgd ? "PGD" : "APGD-CE") << " random start " << random_start);
      gm::AttackOptions opt{.eps = eps, .steps = 10, .random_start = random_start};
      ga::Generator gen(7);
      const auto r = kind == gm::AttackKind::kPgd ? gm::pgd(model, c.x, c.labels, opt, gen)
                                                  : gm::apgd_ce(model, c.x, c.labels, opt, gen);
      check_in_ball(r.x_adv, c.x, eps, 0.0, 1.0);
      CHECK(r.accuracy() == Approx(expected_robust));
      for (std::size_t b = 0; b < c.labels.size(); ++b) {
        INFO("sample " << b);
        CHECK(r.clean_correct[b] == 1);
        CHECK(r.correct[b] == c.robust[b]);
        CHECK(r.loss.data()[b] == Approx(c.worst_loss[b]).epsilon(1e-9));
        CHECK(r.loss.data()[b] >= c.clean_loss[b]);
      }
      // The reported losses are those of the returned points.
      const auto again = ce_rows(model, r.x_adv, c.labels);
      for (std::size_t b = 0; b < c.labels.size(); ++b)
        CHECK(again[b] == Approx(r.loss.data()[b]).epsilon(1e-12));
      // robust_accuracy over chunks of 7 rows agrees.
      opt.kind = kind;
      opt.batch = 7;
      ga::Generator gen2(7);
      const auto ra = gm::robust_accuracy(model, c.x, c.labels, opt, gen2);
      CHECK(ra.clean == 1.0);
      CHECK(ra.robust == Approx(expected_robust));
    }
  }
}

TEST_CASE("attacks: eps 0 changes nothing; a narrow range binds", "[metrics]") {
  ga::Generator data_gen(2);
  const LinearCase c = make_linear_case(0.1, data_gen);
  const auto model = fragile_model();
  ga::Generator gen(3);
  const auto r = gm::apgd_ce(model, c.x, c.labels, {.eps = 0.0, .steps = 5, .restarts = 3}, gen);
  for (ga::index_t i = 0; i < c.x.numel(); ++i) CHECK(r.x_adv.data()[i] == c.x.data()[i]);
  CHECK(r.accuracy() == 1.0);

  // Inputs in [0.3, 0.7] attacked inside [0.25, 0.75] with eps 0.2: the range binds.
  Tensor x = c.x.clone();
  for (double& v : x) v = 0.3 + 0.4 * v;
  const auto p = gm::pgd(model, x, c.labels, {.eps = 0.2, .lo = 0.25, .hi = 0.75, .steps = 8}, gen);
  check_in_ball(p.x_adv, x, 0.2, 0.25, 0.75);
  const auto clean = ce_rows(model, x, c.labels);
  for (std::size_t b = 0; b < clean.size(); ++b) CHECK(p.loss.data()[b] >= clean[b]);
}

TEST_CASE("attacks: a clean input outside the range, allowed, is clamped into it", "[metrics]") {
  // As AutoAttack does to normalised images: the candidates are clamped to [lo, hi] even
  // where the clean input lies outside it (require_clean_in_range = false).
  ga::Generator data_gen(5);
  const LinearCase c = make_linear_case(0.1, data_gen);
  const auto model = fragile_model();
  Tensor x = c.x.clone();
  for (double& v : x) v = 2.0 * v - 0.5;  // in [-0.5, 1.5]
  const gm::AttackOptions opt{.eps = 0.1, .steps = 4, .require_clean_in_range = false};
  ga::Generator gen(6);
  const ga::index_t d = x.numel() / x.dim(0);
  int moved_rows = 0;
  for (const auto& r :
       {gm::pgd(model, x, c.labels, opt, gen), gm::apgd_ce(model, x, c.labels, opt, gen)}) {
    for (ga::index_t b = 0; b < x.dim(0); ++b) {
      // A row no candidate improved on keeps its clean input (as AutoAttack keeps x for the
      // points it does not break); a row that moved lies in the box and the ball around x.
      bool clean = true;
      for (ga::index_t i = b * d; i < (b + 1) * d; ++i) clean &= r.x_adv.data()[i] == x.data()[i];
      if (clean) continue;
      ++moved_rows;
      for (ga::index_t i = b * d; i < (b + 1) * d; ++i) {
        const double v = r.x_adv.data()[i];
        CHECK(v >= 0.0);
        CHECK(v <= 1.0);
        CHECK(v >= std::min(std::max(x.data()[i] - 0.1, 0.0), 1.0) - 1e-12);
        CHECK(v <= std::max(std::min(x.data()[i] + 0.1, 1.0), 0.0) + 1e-12);
      }
    }
  }
  CHECK(moved_rows > 0);  // the attacks did run on inputs outside the box
  // A clean input that is not finite is refused either way.
  Tensor bad = x.clone();
  bad.data()[0] = std::nan("");
  expect_error([&] { gm::pgd(model, bad, c.labels, opt, gen); }, "is not finite");
}

TEST_CASE("attacks cost one forward and one backward pass per iteration", "[metrics]") {
  ga::Generator data_gen(4);
  const LinearCase c = make_linear_case(0.1, data_gen);
  const auto inner = fragile_model();
  int recorded = 0, evaluated = 0;
  auto counted = [&](const Var& x) {
    (x.requires_grad() ? recorded : evaluated)++;
    return inner(x);
  };
  for (int steps : {1, 7, 25}) {
    recorded = evaluated = 0;
    ga::Generator gen(5);
    gm::apgd_ce(counted, c.x, c.labels, {.eps = 0.001, .steps = steps}, gen);
    CHECK(recorded == steps);  // gradients at x^(0) .. x^(N-1)
    CHECK(evaluated == 2);     // the clean input and the last iterate, no graph
    recorded = evaluated = 0;
    gm::pgd(counted, c.x, c.labels, {.eps = 0.001, .steps = steps}, gen);
    CHECK(recorded == steps);
    CHECK(evaluated == 2);
  }
  // Restarts run only on samples not yet fooled: with eps tiny, all of them, every time.
  recorded = evaluated = 0;
  ga::Generator gen(6);
  gm::apgd_ce(counted, c.x, c.labels, {.eps = 0.001, .steps = 4, .restarts = 3}, gen);
  CHECK(recorded == 12);
  CHECK(evaluated == 4);
}

TEST_CASE(
    "APGD checkpoints follow p_0 = 0, p_1 = 0.22, p_j+1 = p_j + max(p_j - p_j-1 - 0.03, 0.06)",
    "[metrics]") {
  // p = 0, .22, .41, .57, .70, .80, .87, .93, .99 (then 1.05 > 1).
  CHECK(gm::detail::apgd_checkpoints(100) == std::vector<int>{22, 41, 57, 70, 80, 87, 93, 99});
  // w_j = ceil(p_j N): 10 gives 3, 5, 6, 7, 8, 9, 10, 10; only those below N are checks.
  CHECK(gm::detail::apgd_checkpoints(10) == std::vector<int>{3, 5, 6, 7, 8, 9});
  CHECK(gm::detail::apgd_checkpoints(1).empty());
}

TEST_CASE("APGD-CE is at least as strong as PGD with the same iterations on a small MLP",
          "[metrics]") {
  // Three random ReLU MLPs (weights x3, so the regions are small), labels their own clean
  // predictions; eps 0.2 on inputs in [0, 1]^10, 20 iterations for both attacks.
  for (std::uint64_t seed : {12, 13, 14}) {
    ga::Generator gen(seed);
    auto mlp = ga::nn::make_mlp<double>(10, 32, 3, 4, true, gen);
    ga::nn::scale_parameters(mlp, 3.0);
    const Tensor x = ga::rand_uniform<double>({64, 10}, gen);
    const Tensor logits = mlp(x);
    std::vector<ga::index_t> labels(64);
    for (ga::index_t b = 0; b < 64; ++b) {
      ga::index_t best = 0;
      for (ga::index_t k = 1; k < 4; ++k)
        if (logits.at(b, k) > logits.at(b, best)) best = k;
      labels[b] = best;
    }
    const gm::AttackOptions opt{.eps = 0.2, .steps = 20};
    ga::Generator g1(1), g2(1);
    const auto p = gm::pgd(mlp, x, labels, opt, g1);
    const auto a = gm::apgd_ce(mlp, x, labels, opt, g2);
    check_in_ball(p.x_adv, x, opt.eps, 0, 1);
    check_in_ball(a.x_adv, x, opt.eps, 0, 1);
    double pgd_loss = 0, apgd_loss = 0;
    for (ga::index_t b = 0; b < 64; ++b) {
      pgd_loss += p.loss.data()[b];
      apgd_loss += a.loss.data()[b];
    }
    INFO("seed " << seed << ": robust accuracy PGD " << p.accuracy() << ", APGD-CE " << a.accuracy()
                 << "; summed loss PGD " << pgd_loss << ", APGD-CE " << apgd_loss);
    CHECK(p.accuracy() < 1.0);  // the budget matters
    CHECK(a.accuracy() <= p.accuracy());
    CHECK(apgd_loss > pgd_loss);
    const auto clean = ce_rows(mlp, x, labels);
    for (ga::index_t b = 0; b < 64; ++b)
      if (a.correct[b]) CHECK(a.loss.data()[b] >= clean[b]);
  }
}

TEST_CASE("attacks: bad inputs", "[metrics][errors]") {
  ga::Generator gen(0);
  const auto model = fragile_model();
  const Tensor x = Tensor::full({3, 1, 2, 2}, 0.5);
  const std::vector<ga::index_t> y = {0, 1, 0};
  expect_error(
      [&] {
        gm::pgd(model, x, std::vector<ga::index_t>{0, 1}, {}, gen);
      },
      "2 labels for 3 rows");
  expect_error([&] { gm::apgd_ce(model, x, y, {.eps = std::nan("")}, gen); },
               "eps must be finite and >= 0, got nan");
  expect_error([&] { gm::apgd_ce(model, x, y, {.eps = -0.1}, gen); },
               "eps must be finite and >= 0");
  expect_error([&] { gm::pgd(model, x, y, {.lo = 1.0, .hi = 1.0}, gen); }, "lo < hi");
  expect_error([&] { gm::pgd(model, x, y, {.lo = 2.0, .hi = 1.0}, gen); }, "lo < hi");
  expect_error([&] { gm::pgd(model, x, y, {.steps = 0}, gen); }, "steps must be at least 1, got 0");
  expect_error([&] { gm::apgd_ce(model, x, y, {.restarts = 0}, gen); }, "restarts");
  expect_error([&] { gm::pgd(model, x, y, {.alpha = -1.0}, gen); }, "alpha");
  expect_error(
      [&] {
        gm::pgd(model, Tensor::full({3, 1, 2, 2}, 1.5), y, {}, gen);
      },
      "outside the valid range");
  expect_error(
      [&] {
        gm::pgd(model, x, std::vector<ga::index_t>{0, 2, 0}, {}, gen);
      },
      "label 2 of row 1 outside [0, 2)");
  expect_error([&] { gm::robust_accuracy(model, x, y, {.batch = 0}, gen); },
               "batch must be at least 1");
  expect_error([&] { gm::robust_accuracy(model, x, std::vector<ga::index_t>{0}, {}, gen); },
               "1 labels for 3 rows");
  auto no_batch = [](const Var& v) { return ga::sum(v); };
  expect_error([&] { gm::apgd_ce(no_batch, x, y, {}, gen); }, "logits [3, C]");
}

TEST_CASE("attacks and accuracy in float", "[metrics]") {
  const ga::Tensor<float> W = ga::Tensor<float>::from({2, 2}, {1.f, -1.f, -1.f, 1.f});
  auto model = [W](const auto& x) {
    return ga::matmul(x - 0.5f, ga::constant_like(x, W), false, true);
  };
  // Gaps 2 (x0 - x1) = 0.4 and 0.1: eps 0.05 moves the gap by 4 eps = 0.2.
  const ga::Tensor<float> x = ga::Tensor<float>::from({2, 2}, {0.6f, 0.4f, 0.525f, 0.475f});
  const std::vector<ga::index_t> y = {0, 0};
  CHECK(gm::accuracy(model, x, y) == 1.0);
  ga::Generator gen(0);
  const auto r = gm::apgd_ce(model, x, y, {.eps = 0.05, .steps = 5}, gen);
  CHECK(r.correct == std::vector<std::uint8_t>{1, 0});
  const auto p = gm::pgd(model, x, y, {.eps = 0.05, .steps = 5}, gen);
  CHECK(p.correct == std::vector<std::uint8_t>{1, 0});
}
