// The bad-input catalogue of issue 11, beside errors.test.cpp (arithmetic, matmul, layout,
// autodiff misuse) and the readers' own [errors] tests: mismatched shapes in the op
// families not covered there (reduction, activation, loss, math, broadcasting), and
// non-finite inputs to the GrokAlign penalties, centroids and PC1, whose documented answer
// (docs/alignment.md) is NaN, never a crash or an exception.
#include <catch2/catch.hpp>
#include <cmath>
#include <grokalign/align.hpp>
#include <grokalign/grokalign.hpp>
#include <grokalign/nn.hpp>
#include <limits>

using namespace grokalign;
using Catch::Contains;

namespace {

using Td = Tensor<double>;
using Vd = Var<double>;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// A small MLP [B, 6] -> [B, 3] and a batch whose sample 1 holds `bad`.
struct Setup {
  Generator gen{7};
  nn::Sequential<double> model = nn::make_mlp<double>(6, 8, 2, 3, true, gen);
  Td x = randn<double>({4, 6}, gen);
  explicit Setup(double bad) { x.data()[6 + 2] = bad; }
};

bool all_nan(const Td& t) {
  for (index_t i = 0; i < t.numel(); ++i)
    if (!std::isnan(t.data()[i])) return false;
  return true;
}

}  // namespace

TEST_CASE("reductions refuse axes the tensor does not have", "[errors]") {
  const Vd x(Td::zeros({2, 3}), true);
  CHECK_THROWS_AS(sum(x, {2}), ShapeError);
  CHECK_THROWS_WITH(sum(x, {2}), Contains("sum") && Contains("[2, 3]"));
  CHECK_THROWS_AS(mean(x, {-3}), ShapeError);
  CHECK_THROWS_WITH(mean(x, {-3}), Contains("[2, 3]"));
}

TEST_CASE("softmax and log_softmax refuse an axis out of range", "[errors]") {
  const Vd x(Td::zeros({2, 3}), true);
  CHECK_THROWS_AS(softmax(x, 2), ShapeError);
  CHECK_THROWS_WITH(softmax(x, 2), Contains("[2, 3]"));
  CHECK_THROWS_AS(log_softmax(x, -3), ShapeError);
  CHECK_THROWS_WITH(log_softmax(x, -3), Contains("[2, 3]"));
}

TEST_CASE("losses refuse predictions and targets of different shapes", "[errors]") {
  const Vd logits(Td::zeros({4, 3}), true);
  CHECK_THROWS_AS(mse(logits, Vd(Td::zeros({4, 2}))), ShapeError);
  CHECK_THROWS_WITH(mse(logits, Vd(Td::zeros({4, 2}))),
                    Contains("mse") && Contains("[4, 3]") && Contains("[4, 2]"));
  CHECK_THROWS_AS(cross_entropy(logits, Td::zeros({3, 3})), ShapeError);
  CHECK_THROWS_WITH(cross_entropy(logits, Td::zeros({3, 3})),
                    Contains("cross_entropy") && Contains("[4, 3]") && Contains("[3, 3]"));
  // Three labels for four samples.
  CHECK_THROWS_AS(cross_entropy(logits, Indices({0, 1, 2})), ShapeError);
  CHECK_THROWS_WITH(cross_entropy(logits, Indices({0, 1, 2})), Contains("cross_entropy"));
  CHECK_THROWS_AS(bce_with_logits(logits, Td::zeros({4})), ShapeError);
  CHECK_THROWS_WITH(bce_with_logits(logits, Td::zeros({4})),
                    Contains("bce") && Contains("[4, 3]") && Contains("[4]"));
}

TEST_CASE("broadcasting refuses shapes that cannot meet", "[errors]") {
  const Vd x(Td::zeros({2, 3}), true);
  CHECK_THROWS_AS(broadcast_to(x, Shape{2, 4}), ShapeError);
  CHECK_THROWS_WITH(broadcast_to(x, Shape{2, 4}), Contains("[2, 3]") && Contains("[2, 4]"));
  CHECK_THROWS_AS(x / Vd(Td::ones({3, 3})), ShapeError);
  CHECK_THROWS_WITH(x / Vd(Td::ones({3, 3})), Contains("div") && Contains("[3, 3]"));
  CHECK_THROWS_AS(clamp(x, 1.0, 0.0), ShapeError);
  CHECK_THROWS_WITH(clamp(x, 1.0, 0.0), Contains("clamp"));
}

TEST_CASE("the GrokAlign penalty of a non-finite input is NaN, not a crash", "[errors]") {
  for (double bad : {kNaN, kInf}) {
    Setup s(bad);
    const Vd x(s.x, true);
    const Vd out = s.model(x);
    Vd p;
    REQUIRE_NOTHROW(p = align::grokalign_penalty_from(out, x, s.gen));
    CHECK(std::isnan(p.item()));
    // Its weight gradients are defined, and non-finite: the run's NaN guard stops there.
    const auto g = grad<double>({p}, {s.model.named_parameters()[0].second});
    CHECK_FALSE(g[0].value().array().isFinite().all());
    REQUIRE_NOTHROW(
        p = align::grokalign_penalty_from(out, x, s.gen, {.estimator = align::Estimator::kExact}));
    CHECK(std::isnan(p.item()));
  }
}

TEST_CASE("the alignment penalties of a non-finite input are NaN, not a crash", "[errors]") {
  for (double bad : {kNaN, kInf}) {
    Setup s(bad);
    const Vd x(s.x, true);
    const Vd out = s.model(x);
    Vd p;
    REQUIRE_NOTHROW(p = align::centroid_alignment_penalty_from(out, x));
    CHECK(std::isnan(p.item()));
    REQUIRE_NOTHROW(p = align::jacobian_alignment_penalty_from(out, x, s.gen));
    CHECK(std::isnan(p.item()));
    REQUIRE_NOTHROW(p = align::jacobian_alignment_penalty(s.model, s.x, s.gen));
    CHECK(std::isnan(p.item()));
  }
}

TEST_CASE("non-finite weights make the penalty NaN, not a crash", "[errors]") {
  Setup s(0.0);
  Vd w = s.model.named_parameters()[0].second;
  Td bad = w.value().clone();
  bad.data()[0] = kNaN;
  w.assign(bad);
  const Vd x(s.x, true);
  CHECK(std::isnan(align::grokalign_penalty_from(s.model(x), x, s.gen).item()));
}

TEST_CASE("centroids of a non-finite sample are NaN for that sample only", "[errors]") {
  Setup s(kNaN);
  align::CentroidStats<double> c;
  REQUIRE_NOTHROW(c = align::centroids(s.model, s.x));
  CHECK(std::isnan(c.alignment.data()[1]));
  // Samples are independent: the others stay finite.
  for (index_t b : {0, 2, 3}) CHECK(std::isfinite(c.alignment.data()[b]));
  Setup inf(kInf);
  REQUIRE_NOTHROW(c = align::centroids(inf.model, inf.x));
  CHECK(std::isnan(c.alignment.data()[1]));
}

TEST_CASE("PC1 of a non-finite Jacobian is NaN, not a crash or garbage", "[errors]") {
  for (double bad : {kNaN, kInf}) {
    Setup s(bad);
    align::Pc1Stats<double> r;
    REQUIRE_NOTHROW(r = align::pc1(s.model, s.x));
    CHECK(std::isnan(r.per_sample.data()[1]));
    for (index_t b : {0, 2, 3}) {
      CHECK(r.per_sample.data()[b] > 0.0);
      CHECK(r.per_sample.data()[b] <= 1.0);
    }
    CHECK(std::isnan(r.mean));
  }
  // Directly on a matrix holding NaN or infinity.
  Eigen::MatrixXd m = Eigen::MatrixXd::Ones(3, 4);
  m(1, 2) = kInf;
  CHECK(std::isnan(align::pc1_of(m)));
  m(1, 2) = kNaN;
  CHECK(std::isnan(align::pc1_of(m)));
  CHECK(all_nan(Td::full({2}, kNaN)));
}
