// SGD against PyTorch's update rule computed here with plain doubles: plain, weight decay,
// momentum (with dampening), Nesterov; float parameters; real backward() gradients;
// subsets, parameters without gradients, zero_grad, bad gradients and bad options.
#include <grokalign/ops.hpp>

#include "optim_helpers.hpp"

using namespace grokalign;
using namespace optim_test;
using Catch::Contains;

namespace {

const Vec kSgdTheta0{0.5, -1.0, 2.0};
const std::vector<Vec> kSgdGrads{{0.1, -0.2, 0.3}, {-0.4, 0.5, 0.6}, {0.7, -0.8, -0.9}};

// torch.optim.SGD's loop, one parameter, written out independently of the library.
Vec reference_sgd(Vec theta, const std::vector<Vec>& grads, double lr, double momentum, double wd,
                  double dampening, bool nesterov) {
  Vec buf;
  for (const Vec& g : grads) {
    const bool first = buf.empty();
    if (first) buf.assign(theta.size(), 0.0);
    for (std::size_t j = 0; j < theta.size(); ++j) {
      double d = g[j] + wd * theta[j];
      if (momentum != 0) {
        buf[j] = first ? d : momentum * buf[j] + (1 - dampening) * d;
        d = nesterov ? d + momentum * buf[j] : buf[j];
      }
      theta[j] -= lr * d;
    }
  }
  return theta;
}

template <class T>
Vec run_sgd(SgdOptions options, std::size_t steps = 3) {
  auto p = param<T>(kSgdTheta0);
  SGD<T> opt({p}, options);
  for (std::size_t k = 0; k < steps; ++k) {
    give_grad(p, kSgdGrads[k]);
    opt.step();
  }
  return values_of(p.value());
}

}  // namespace

TEST_CASE("SGD matches PyTorch's update over three steps", "[optim][sgd]") {
  struct Case {
    const char* name;
    SgdOptions o;
  };
  const Case cases[] = {
      {"plain", {.lr = 0.1}},
      {"weight decay", {.lr = 0.1, .weight_decay = 0.05}},
      {"momentum", {.lr = 0.1, .momentum = 0.9}},
      {"momentum, dampening, weight decay",
       {.lr = 0.05, .momentum = 0.8, .weight_decay = 0.1, .dampening = 0.3}},
      {"nesterov", {.lr = 0.1, .momentum = 0.9, .nesterov = true}},
      {"nesterov, weight decay",
       {.lr = 0.1, .momentum = 0.7, .weight_decay = 0.2, .nesterov = true}},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    const Vec want = reference_sgd(kSgdTheta0, kSgdGrads, c.o.lr, c.o.momentum, c.o.weight_decay,
                                   c.o.dampening, c.o.nesterov);
    check_close(run_sgd<double>(c.o), want);
    check_close(run_sgd<float>(c.o), want, 1e-6);
  }

  SECTION("hand-computed momentum sequence") {
    // g = 1 each step, lr 0.1, momentum 0.9: buf 1, 1.9, 2.71; theta 1 -> 0.9 -> 0.71 -> 0.439.
    auto p = param(Vec{1.0});
    SGD<double> opt({p}, {.lr = 0.1, .momentum = 0.9});
    const double want[] = {0.9, 0.71, 0.439};
    for (double w : want) {
      give_grad(p, {1.0});
      opt.step();
      CHECK(p.value().at(0) == Approx(w).epsilon(1e-14));
    }
    check_close(opt.state(0).momentum_buffer, {2.71});
  }
  SECTION("the gradient itself is not modified") {
    auto p = param(kSgdTheta0);
    SGD<double> opt({p}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.5});
    give_grad(p, kSgdGrads[0]);
    opt.step();
    check_close(p.grad(), kSgdGrads[0], 0);
  }
}

TEST_CASE("SGD trains on gradients from backward() with in-place zero_grad", "[optim][sgd]") {
  // loss = sum(w * w): gradient 2w, so plain SGD with lr 0.1 multiplies w by 0.8 per step.
  auto w = param(Vec{1.0, -2.0, 0.5});
  SGD<double> opt({w}, {.lr = 0.1});
  const double* grad_buffer = nullptr;
  for (int k = 0; k < 3; ++k) {
    opt.zero_grad(/*set_to_none=*/false);
    sum(w * w).backward();
    if (k == 0) grad_buffer = w.grad().data();
    CHECK(w.grad().data() == grad_buffer);  // backward accumulated into the zeroed buffer
    opt.step();
  }
  check_close(w.value(), {0.512, -1.024, 0.256}, 1e-14);
  opt.zero_grad(/*set_to_none=*/false);
  check_close(w.grad(), {0, 0, 0}, 0);
  opt.zero_grad();  // PyTorch 2's default: set_to_none
  CHECK_FALSE(w.grad().defined());
}

TEST_CASE("Optimisers update only their own parameters and skip those without gradient",
          "[optim][sgd][adamw]") {
  auto a = param(Vec{1.0, 2.0});
  auto b = param(Vec{3.0});
  auto c = param(Vec{-1.0, 0.5});  // in the optimiser, but never gets a gradient
  give_grad(a, {0.5, -0.5});
  give_grad(b, {1.0});

  SECTION("SGD") {
    SGD<double> opt({a, c}, {.lr = 0.1, .momentum = 0.9});
    opt.step();
    check_close(a.value(), {0.95, 2.05});
    check_close(b.value(), {3.0}, 0);
    check_close(b.grad(), {1.0}, 0);
    check_close(c.value(), {-1.0, 0.5}, 0);
    CHECK_FALSE(opt.state(1).momentum_buffer.defined());
    opt.zero_grad(/*set_to_none=*/false);
    check_close(a.grad(), {0, 0}, 0);
    check_close(b.grad(), {1.0}, 0);  // not ours to zero
    CHECK_FALSE(c.grad().defined());
  }
  SECTION("AdamW") {
    AdamW<double> opt({a, c}, {.lr = 0.1, .weight_decay = 0.1});
    opt.step();
    CHECK(a.value().at(0) < 1.0);
    check_close(b.value(), {3.0}, 0);
    check_close(c.value(), {-1.0, 0.5}, 0);  // no gradient: not even weight decay applies
    CHECK(opt.state(0).step == 1);
    CHECK(opt.state(1).step == 0);
    CHECK_FALSE(opt.state(1).exp_avg.defined());
  }
}

TEST_CASE("SGD refuses bad options, bad parameter lists and mis-shaped gradients",
          "[optim][sgd][errors]") {
  auto p = param(Vec{1.0, 2.0});
  CHECK_THROWS_WITH((SGD<double>({p}, {.lr = -0.1})), Contains("SGD") && Contains("lr"));
  CHECK_THROWS_WITH((SGD<double>({p}, {.lr = std::nan("")})), Contains("SGD") && Contains("lr"));
  CHECK_THROWS_WITH((SGD<double>({p}, {.lr = 0.1, .momentum = -0.5})),
                    Contains("SGD") && Contains("momentum"));
  CHECK_THROWS_WITH((SGD<double>({p}, {.lr = 0.1, .weight_decay = -1})),
                    Contains("SGD") && Contains("weight_decay"));
  CHECK_THROWS_WITH((SGD<double>({p}, {.lr = 0.1, .nesterov = true})),
                    Contains("SGD") && Contains("nesterov"));
  CHECK_THROWS_WITH(
      (SGD<double>({p}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .nesterov = true})),
      Contains("SGD") && Contains("dampening"));
  CHECK_THROWS_AS((SGD<double>({p}, {.lr = 0.1, .momentum = -1})), Error);

  CHECK_THROWS_WITH((SGD<double>({p, Var<double>()}, {})),
                    Contains("SGD") && Contains("parameter 1") && Contains("undefined"));
  CHECK_THROWS_WITH((SGD<double>({p, p}, {})), Contains("SGD") && Contains("parameters 0 and 1"));
  const Var<double> not_leaf = p * p;
  CHECK_THROWS_WITH((SGD<double>({not_leaf}, {})), Contains("SGD") && Contains("leaf"));

  SGD<double> opt({p}, {.lr = 0.1});
  CHECK_THROWS_WITH(opt.set_lr(-1.0), Contains("SGD") && Contains("lr"));
  CHECK(opt.lr() == 0.1);
  opt.set_lr(0.2);
  CHECK(opt.lr() == 0.2);

  // A mis-shaped gradient cannot reach the optimiser: set_grad refuses it.
  CHECK_THROWS_AS(p.set_grad(Tensor<double>::ones(Shape{3})), ShapeError);
  CHECK_THROWS_WITH(p.set_grad(Tensor<double>::ones(Shape{3})),
                    Contains("set_grad") && Contains("[3]") && Contains("[2]"));
  CHECK_NOTHROW(opt.step());  // no gradient yet: skipped
  check_close(p.value(), {1.0, 2.0}, 0);
}

TEST_CASE("SGD and AdamW propagate non-finite gradients without crashing", "[optim][errors]") {
  // Documented choice: as in PyTorch, NaN/Inf reach the parameters; nothing throws.
  auto p = param(Vec{1.0, 2.0});
  auto q = param(Vec{1.0, 2.0});
  SGD<double> sgd({p}, {.lr = 0.1, .momentum = 0.9});
  AdamW<double> adamw({q});
  give_grad(p, {std::nan(""), 1.0});
  give_grad(q, {INFINITY, 1.0});
  CHECK_NOTHROW(sgd.step());
  CHECK_NOTHROW(adamw.step());
  CHECK(std::isnan(p.value().at(0)));
  CHECK(std::isfinite(p.value().at(1)));
  CHECK_FALSE(std::isfinite(q.value().at(0)));
  CHECK(std::isfinite(q.value().at(1)));
}
