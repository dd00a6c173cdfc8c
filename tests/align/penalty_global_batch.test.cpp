// The penalty of a shard of a global batch (PenaltyOptions::global_batch / global_offset),
// the form data-parallel training uses (issue 13), in one process: the shards' penalties and
// weight gradients add up to the whole batch's, and the default stays the whole-batch mean.
#include <catch2/catch.hpp>

#include <cmath>
#include <grokalign/align.hpp>
#include <grokalign/grokalign.hpp>
#include <grokalign/nn.hpp>

namespace ga = grokalign;
using ga::index_t;
using Opts = ga::align::PenaltyOptions;

namespace {

struct Parts {
  double penalty = 0;
  std::vector<ga::Tensor<double>> grads;
};

// Penalty and weight gradients of rows [offset, offset + rows) of x, with generator seed 3.
Parts penalty_of(const ga::nn::Sequential<double>& model, const ga::Tensor<double>& x,
                 index_t offset, index_t rows, Opts opt, bool as_shard) {
  if (as_shard) {
    opt.global_batch = x.shape()[0];
    opt.global_offset = offset;
  }
  ga::Generator proj(3);
  const auto params = model.parameters();
  ga::Var<double> pen;
  if (opt.estimator == ga::align::Estimator::kInputProjections) {
    pen = ga::align::grokalign_penalty(model, x.rows(offset, rows), proj, opt);
  } else {
    const ga::Var<double> xv(x.rows(offset, rows), true);
    pen = ga::align::grokalign_penalty_from(model(xv), xv, proj, opt);
  }
  Parts p{pen.item(), {}};
  for (const auto& g : ga::grad<double>({pen}, params)) p.grads.push_back(g.value());
  return p;
}

}  // namespace

TEST_CASE("penalty shards of a global batch add up to the whole batch's penalty and gradients",
          "[align][distributed]") {
  ga::Generator gen(1);
  // Bias-free: a ReLU network's Jacobian has no gradient in its biases.
  const auto model = ga::nn::make_mlp<double>(6, 5, 3, 4, false, gen);
  const ga::Tensor<double> x = ga::randn<double>(ga::Shape{7, 6}, gen);
  using ga::align::Estimator;
  using ga::align::FirstProduct;
  using ga::align::PenaltyForm;
  for (const Opts& opt :
       {Opts{.first_product = FirstProduct::kDirect},
        Opts{.projections = 2, .first_product = FirstProduct::kGram},
        Opts{.estimator = Estimator::kExact, .form = PenaltyForm::kHalfSquaredNorm},
        Opts{.estimator = Estimator::kInputProjections, .projections = 2}}) {
    const Parts whole = penalty_of(model, x, 0, 7, opt, false);
    const Parts a = penalty_of(model, x, 0, 3, opt, true),
                b = penalty_of(model, x, 3, 4, opt, true);
    CHECK(a.penalty + b.penalty == Approx(whole.penalty).epsilon(1e-13));
    for (std::size_t i = 0; i < whole.grads.size(); ++i)
      for (index_t j = 0; j < whole.grads[i].numel(); ++j)
        CHECK(a.grads[i].data()[j] + b.grads[i].data()[j] ==
              Approx(whole.grads[i].data()[j]).margin(1e-13));
    // The whole batch as its own single shard is the default penalty, projections included.
    CHECK(penalty_of(model, x, 0, 7, opt, true).penalty == Approx(whole.penalty).epsilon(1e-14));
  }
}

TEST_CASE("penalty shard options are checked", "[align][distributed][errors]") {
  ga::Generator gen(1);
  const auto model = ga::nn::make_mlp<double>(3, 4, 2, 2, false, gen);
  const ga::Tensor<double> x = ga::randn<double>(ga::Shape{4, 3}, gen);
  auto penalty = [&](Opts opt) {
    const ga::Var<double> xv(x, true);
    return ga::align::grokalign_penalty_from(model(xv), xv, gen, opt);
  };
  CHECK_THROWS_WITH(penalty({.global_batch = 5, .global_offset = 2}),
                    Catch::Contains("does not fit a global_batch of 5"));
  CHECK_THROWS_WITH(penalty({.global_batch = 0, .global_offset = 1}),
                    Catch::Contains("does not fit"));
  CHECK_THROWS_WITH(penalty({.constrained = true, .level = 1, .global_batch = 8}),
                    Catch::Contains("constrained"));
  CHECK_NOTHROW(penalty({.global_batch = 8, .global_offset = 4}));
}
