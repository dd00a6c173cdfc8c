// The engine's GrokAlign objective and its weight gradients equal the hand-derived
// analytic double backward used as the performance floor in benchmarks/.
#include <catch2/catch.hpp>

#include "../../benchmarks/mlp_reference.hpp"

using grokalign::bench::engine_objective;
using grokalign::bench::HandDerivedMlp;
using grokalign::bench::MlpProblem;

TEST_CASE("engine GrokAlign step equals the hand-derived double backward",
          "[autodiff][higher-order][e2e]") {
  const bool align = GENERATE(false, true);
  MlpProblem<double> p({20, 12, 12, 12, 5}, 9, 8.0, 0.3, 7);
  HandDerivedMlp<double> hand(p);
  const double hand_loss = hand.step(align);

  std::vector<grokalign::Var<double>> w;
  for (const auto& t : p.weights) w.emplace_back(t, true);
  const auto loss = engine_objective(p, w, align);
  const auto g = grokalign::grad<double>({loss}, w);

  CHECK(loss.item() == Approx(hand_loss).epsilon(1e-12));
  for (std::size_t l = 0; l < w.size(); ++l) {
    INFO("layer " << l);
    const auto& mine = g[l].value();
    REQUIRE(mine.numel() == hand.grads[l].size());
    double diff = 0, scale = 0;
    for (grokalign::index_t i = 0; i < mine.numel(); ++i) {
      diff = std::max(diff, std::abs(mine.data()[i] - hand.grads[l].data()[i]));
      scale = std::max(scale, std::abs(hand.grads[l].data()[i]));
    }
    CHECK(scale > 0);
    CHECK(diff <= 1e-11 * scale);
  }
}
