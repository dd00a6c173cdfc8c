// The centroid- and Jacobian-alignment penalties of a shard of a global batch
// (AlignmentPenaltyOptions::global_batch / global_offset), the form data-parallel training
// uses (issue 13), in one process: the shards' penalties and weight gradients add up to the
// whole batch's, the whole batch as its own shard is the default penalty, and the
// constrained form, which does not add up, is refused.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <grokalign/align.hpp>
#include <grokalign/grokalign.hpp>
#include <grokalign/nn.hpp>
#include <vector>

namespace ga = grokalign;
using ga::index_t;
using AlignOpts = ga::align::AlignmentPenaltyOptions;

namespace {

enum class AlignmentKind { kCentroidFrom, kCentroidOfModel, kJacobianFrom, kJacobianOfModel };

struct AlignmentShare {
  double penalty = 0;
  std::vector<ga::Tensor<double>> grads;
};

// Penalty and weight gradients of rows [offset, offset + rows) of x, as a shard of x when
// `as_shard`, with projection generator seed 5.
AlignmentShare alignment_share_of(AlignmentKind kind, const ga::nn::Sequential<double>& model,
                                  const ga::Tensor<double>& x, index_t offset, index_t rows,
                                  AlignOpts opt, bool as_shard) {
  if (as_shard) {
    opt.global_batch = x.shape()[0];
    opt.global_offset = offset;
  }
  ga::Generator proj(5);
  const ga::Tensor<double> xs = x.rows(offset, rows);
  const ga::Var<double> xv(xs, true);
  ga::Var<double> pen;
  switch (kind) {
    case AlignmentKind::kCentroidFrom:
      pen = ga::align::centroid_alignment_penalty_from(model(xv), xv, opt);
      break;
    case AlignmentKind::kCentroidOfModel:
      pen = ga::align::centroid_alignment_penalty(model, xs, opt);
      break;
    case AlignmentKind::kJacobianFrom:
      pen = ga::align::jacobian_alignment_penalty_from(model(xv), xv, proj, opt);
      break;
    case AlignmentKind::kJacobianOfModel:
      pen = ga::align::jacobian_alignment_penalty(model, xs, proj, opt);
      break;
  }
  AlignmentShare s{pen.item(), {}};
  for (const auto& g : ga::grad<double>({pen}, model.parameters(), {}, {.allow_unused = true}))
    s.grads.push_back(g.defined() ? g.value().clone() : ga::Tensor<double>());
  return s;
}

}  // namespace

TEST_CASE("alignment penalty shards add up to the whole batch's penalty and gradients",
          "[align][distributed]") {
  ga::Generator gen(2);
  const auto model = ga::nn::make_mlp<double>(6, 5, 3, 4, false, gen);
  const ga::Tensor<double> x = ga::randn<double>(ga::Shape{7, 6}, gen);
  using ga::align::Estimator;
  struct Case {
    AlignmentKind kind;
    AlignOpts opt;
  };
  const std::vector<Case> cases = {
      {AlignmentKind::kCentroidFrom, {}},
      {AlignmentKind::kCentroidFrom, {.squared = true}},
      {AlignmentKind::kCentroidOfModel, {}},
      {AlignmentKind::kJacobianFrom, {}},
      {AlignmentKind::kJacobianFrom, {.squared = true, .projections = 2}},
      {AlignmentKind::kJacobianFrom, {.estimator = Estimator::kExact}},
      {AlignmentKind::kJacobianOfModel, {.projections = 2}},
      {AlignmentKind::kJacobianOfModel,
       {.estimator = Estimator::kInputProjections, .projections = 3}},
      {AlignmentKind::kJacobianOfModel, {.squared = true, .estimator = Estimator::kExact}},
  };
  // Two and three shards of unequal sizes.
  const std::vector<std::vector<index_t>> splits = {{3, 4}, {2, 2, 3}};
  for (std::size_t c = 0; c < cases.size(); ++c) {
    const auto& [kind, opt] = cases[c];
    const AlignmentShare whole = alignment_share_of(kind, model, x, 0, 7, opt, false);
    double grad_scale = 0;
    for (const auto& g : whole.grads)
      if (g.numel()) grad_scale = std::max(grad_scale, g.matrix().cwiseAbs().maxCoeff());
    CAPTURE(c, whole.penalty, grad_scale);
    REQUIRE(grad_scale > 1e-6);  // the gradients compared are not all zero
    for (const auto& sizes : splits) {
      CAPTURE(sizes.size());
      double penalty = 0;
      std::vector<ga::Tensor<double>> grads;
      for (const auto& g : whole.grads)
        grads.push_back(g.numel() ? ga::Tensor<double>::zeros(g.shape()) : ga::Tensor<double>());
      index_t offset = 0;
      for (index_t rows : sizes) {
        const AlignmentShare s = alignment_share_of(kind, model, x, offset, rows, opt, true);
        penalty += s.penalty;
        for (std::size_t i = 0; i < grads.size(); ++i)
          if (s.grads[i].numel()) grads[i].matrix() += s.grads[i].matrix();
        offset += rows;
      }
      CHECK(std::abs(penalty - whole.penalty) <= 1e-12);
      double worst = 0;
      for (std::size_t i = 0; i < grads.size(); ++i)
        if (whole.grads[i].numel())
          worst =
              std::max(worst, (grads[i].matrix() - whole.grads[i].matrix()).cwiseAbs().maxCoeff());
      CHECK(worst <= 1e-12);
    }
    // The whole batch as its own single shard is the default penalty, projections included.
    CHECK(std::abs(alignment_share_of(kind, model, x, 0, 7, opt, true).penalty - whole.penalty) <=
          1e-14);
  }
}

TEST_CASE("alignment penalty shard options are checked; the constrained form is refused",
          "[align][distributed][errors]") {
  ga::Generator gen(3);
  const auto model = ga::nn::make_mlp<double>(3, 4, 2, 2, false, gen);
  const ga::Tensor<double> x = ga::randn<double>(ga::Shape{4, 3}, gen);
  const ga::Var<double> xv(x, true);
  const ga::Var<double> out = model(xv);
  auto centroid = [&](AlignOpts opt) {
    return ga::align::centroid_alignment_penalty_from(out, xv, opt);
  };
  auto jacobian = [&](AlignOpts opt) {
    return ga::align::jacobian_alignment_penalty_from(out, xv, gen, opt);
  };
  auto jacobian_of_model = [&](AlignOpts opt) {
    return ga::align::jacobian_alignment_penalty(model, x, gen, opt);
  };
  for (const auto& penalty : {std::function<ga::Var<double>(AlignOpts)>(centroid),
                              std::function<ga::Var<double>(AlignOpts)>(jacobian),
                              std::function<ga::Var<double>(AlignOpts)>(jacobian_of_model)}) {
    CHECK_THROWS_WITH(penalty({.global_batch = 5, .global_offset = 2}),
                      Catch::Contains("a batch of 4 rows at global_offset 2") &&
                          Catch::Contains("does not fit a global_batch of 5"));
    CHECK_THROWS_WITH(penalty({.global_batch = 0, .global_offset = 1}),
                      Catch::Contains("does not fit"));
    CHECK_THROWS_WITH(penalty({.global_batch = 8, .global_offset = -1}),
                      Catch::Contains("global_offset -1"));
    CHECK_THROWS_WITH(penalty({.constrained = true, .level = 0.5, .global_batch = 8}),
                      Catch::Contains("constrained") && Catch::Contains("global_batch 8"));
    CHECK_THROWS_WITH(
        penalty({.squared = true, .constrained = true, .level = 0.5, .global_batch = 8}),
        Catch::Contains("constrained"));
    CHECK_NOTHROW(penalty({.global_batch = 8, .global_offset = 4}));
    CHECK_NOTHROW(penalty({.constrained = true, .level = 0.5}));  // the whole batch: allowed
  }
}
