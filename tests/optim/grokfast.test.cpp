// Grokfast filters against the reference formulas (Lee et al.'s gradfilter_ema and
// gradfilter_ma) computed here with plain doubles over several steps.
#include <deque>

#include "optim_helpers.hpp"

using namespace grokalign;
using namespace optim_test;
using Catch::Contains;

namespace {

// Gradient k of a 3-entry parameter: varied signs and sizes, no pattern the filters could
// accidentally satisfy.
Vec grad_at(int k) {
  return {std::sin(1.0 + k), 0.5 * std::cos(0.3 * k) - 0.2, 0.1 * k - 0.4};
}

}  // namespace

TEST_CASE("GrokfastEma follows h <- alpha h + (1 - alpha) g, g <- g + lamb h",
          "[optim][grokfast]") {
  const double alpha = 0.8, lamb = 0.1;  // GrokAlign's run
  auto p = param(Vec{0, 0, 0});
  auto q = param(Vec{0});  // gets its first gradient late: its h starts then
  GrokfastEma<double> ema({p, q}, alpha, lamb);
  CHECK_FALSE(ema.ema(0).defined());

  Vec h;
  Vec hq;
  for (int k = 0; k < 6; ++k) {
    const Vec g = grad_at(k);
    give_grad(p, g);
    if (k >= 3)
      give_grad(q, {g[0]});
    else
      q.set_grad(Tensor<double>());
    ema.apply();

    if (h.empty())
      h = g;
    else
      for (std::size_t j = 0; j < g.size(); ++j) h[j] = alpha * h[j] + (1 - alpha) * g[j];
    Vec want(g.size());
    for (std::size_t j = 0; j < g.size(); ++j) want[j] = g[j] + lamb * h[j];
    INFO("step " << k);
    check_close(p.grad(), want);
    check_close(ema.ema(0), h);

    if (k < 3) {
      CHECK_FALSE(q.grad().defined());
      CHECK_FALSE(ema.ema(1).defined());
    } else {
      hq = hq.empty() ? Vec{g[0]} : Vec{alpha * hq[0] + (1 - alpha) * g[0]};
      check_close(q.grad(), {g[0] + lamb * hq[0]});
    }
  }

  SECTION("first call: h = g exactly, gradient becomes (1 + lamb) g") {
    auto r = param(Vec{0, 0});
    GrokfastEma<double> f({r});  // reference defaults alpha 0.98, lamb 2
    CHECK(f.alpha() == 0.98);
    CHECK(f.lamb() == 2.0);
    give_grad(r, {0.3, -0.7});
    f.apply();
    check_close(f.ema(0), {0.3, -0.7}, 0);
    check_close(r.grad(), {0.9, -2.1}, 1e-15);
    f.reset();
    CHECK_FALSE(f.ema(0).defined());
  }
  SECTION("float") {
    auto r = param<float>(Vec{0});
    GrokfastEma<float> f({r}, 0.5, 1.0);
    give_grad(r, {1.0});
    f.apply();  // h 1, g 2
    give_grad(r, {3.0});
    f.apply();  // h 2, g 5
    CHECK(r.grad().at(0) == 5.0f);
  }
}

TEST_CASE("GrokfastMa warms up, then adds lamb times the window mean or sum", "[optim][grokfast]") {
  const index_t w = 3;
  const double lamb = 5.0;
  struct Case {
    GrokfastMaFilter filter;
    bool warmup;
  };
  const Case cases[] = {{GrokfastMaFilter::kMean, true},
                        {GrokfastMaFilter::kSum, true},
                        {GrokfastMaFilter::kMean, false},
                        {GrokfastMaFilter::kSum, false}};
  for (const Case& c : cases) {
    const bool mean = c.filter == GrokfastMaFilter::kMean;
    INFO((mean ? "mean" : "sum") << (c.warmup ? ", warm-up" : ", no warm-up"));
    auto p = param(Shape{3, 1}, Vec{0, 0, 0});
    GrokfastMa<double> ma({p}, w, lamb, c.filter, c.warmup);
    std::deque<Vec> window;  // the reference's deque(maxlen = w) of raw gradients
    // Nine steps: the ring wraps (and resynchronises its running sum) three times.
    for (int k = 0; k < 9; ++k) {
      const Vec g = grad_at(k);
      give_grad(p, g);
      ma.apply();

      window.push_back(g);
      if (static_cast<index_t>(window.size()) > w) window.pop_front();
      Vec want = g;
      if (!c.warmup || static_cast<index_t>(window.size()) == w) {
        for (std::size_t j = 0; j < g.size(); ++j) {
          double s = 0;
          for (const Vec& old : window) s += old[j];
          if (mean) s /= static_cast<double>(window.size());
          want[j] += lamb * s;
        }
      }
      INFO("step " << k);
      CHECK(ma.count(0) == static_cast<index_t>(window.size()));
      check_close(p.grad(), want, 1e-14);
    }
  }

  SECTION("reference defaults; a parameter without gradient is skipped") {
    auto p = param(Vec{0});
    auto q = param(Vec{0});
    GrokfastMa<double> ma({p, q});
    CHECK(ma.window() == 100);
    CHECK(ma.lamb() == 5.0);
    CHECK(ma.filter() == GrokfastMaFilter::kMean);
    CHECK(ma.warmup());
    give_grad(p, {1.0});
    ma.apply();
    CHECK(ma.count(0) == 1);
    CHECK(ma.count(1) == 0);
    CHECK(p.grad().at(0) == 1.0);  // warming up
    ma.reset();
    CHECK(ma.count(0) == 0);
  }
}

TEST_CASE("GrokfastMa's running sum stays exact over a long float run", "[optim][grokfast]") {
  // 1000 steps with a window of 7 whose gradients alternate between scales 1e3 and 1e-2:
  // a float running sum would keep the rounding error of the large gradients after they
  // left the window (about 1e-4, as large as the small gradients' mean); the double sum,
  // recomputed at every wrap, keeps every filtered gradient accurate to float precision.
  const index_t w = 7;
  auto p = param<float>(Vec{0, 0});
  GrokfastMa<float> ma({p}, w, 1.0, GrokfastMaFilter::kMean);
  std::deque<Vec> window;
  std::uint32_t state = 12345;
  auto next = [&] {
    state = state * 1664525u + 1013904223u;
    return static_cast<double>(state >> 8) / static_cast<double>(1u << 24) - 0.5;
  };
  double worst = 0;
  for (int k = 0; k < 1000; ++k) {
    const double scale = (k % 100 < 50) ? 1e3 : 1e-2;
    Vec g{static_cast<float>(scale * next()), static_cast<float>(scale * next())};
    give_grad(p, g);
    ma.apply();
    window.push_back(g);
    if (static_cast<index_t>(window.size()) > w) window.pop_front();
    if (static_cast<index_t>(window.size()) < w) continue;
    for (std::size_t j = 0; j < 2; ++j) {
      double s = 0;
      for (const Vec& old : window) s += old[j];
      const double want = g[j] + s / w;
      // Relative to the two terms' sizes: the float result is rounded once per term.
      const double size = std::abs(g[j]) + std::abs(s) / w;
      worst = std::max(worst, std::abs(p.grad().at(j) - want) / size);
    }
  }
  CHECK(worst < 1e-6);
}

TEST_CASE("Grokfast filters refuse bad options", "[optim][grokfast][errors]") {
  auto p = param(Vec{0});
  const std::vector<Var<double>> ps{p};
  CHECK_THROWS_WITH(GrokfastEma<double>(ps, 1.5), Contains("GrokfastEma") && Contains("alpha"));
  CHECK_THROWS_WITH(GrokfastEma<double>(ps, -0.1), Contains("GrokfastEma") && Contains("alpha"));
  CHECK_THROWS_WITH(GrokfastEma<double>(ps, 0.9, std::nan("")),
                    Contains("GrokfastEma") && Contains("lamb"));
  CHECK_THROWS_WITH(GrokfastMa<double>(ps, 0), Contains("GrokfastMa") && Contains("window"));
  CHECK_THROWS_WITH(GrokfastMa<double>(ps, 10, INFINITY),
                    Contains("GrokfastMa") && Contains("lamb"));
  CHECK_THROWS_WITH(GrokfastMa<double>({p, p}), Contains("GrokfastMa") && Contains("same Var"));
  CHECK_THROWS_WITH(GrokfastEma<double>({Var<double>()}),
                    Contains("GrokfastEma") && Contains("undefined"));

  GrokfastEma<double> ema(ps);
  CHECK_THROWS_AS(p.set_grad(Tensor<double>::ones(Shape{2})), ShapeError);
  CHECK_NOTHROW(ema.apply());  // the refused gradient never reached the filter
}
