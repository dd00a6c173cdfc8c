// Why zero_grad() drops gradients by default (PyTorch 2's set_to_none=True): a parameter
// that the next backward pass does not reach is then skipped by step(), so weight decay and
// moment decay do not touch it, exactly as in PyTorch. Zeroing in place would decay it.
#include <catch2/catch.hpp>

#include <grokalign/core.hpp>
#include <grokalign/ops.hpp>
#include <grokalign/optim.hpp>
#include <grokalign/reverse.hpp>

namespace ga = grokalign;

TEST_CASE("zero_grad's default leaves an unreached parameter alone; in place it decays",
          "[optim][zero_grad]") {
  for (bool set_to_none : {true, false}) {
    INFO("set_to_none " << set_to_none);
    ga::Var<double> used(ga::Tensor<double>::from({2}, {1, 2}), true);
    ga::Var<double> unused(ga::Tensor<double>::from({2}, {3, 4}), true);
    ga::AdamW<double> opt({used, unused}, {.lr = 0.1, .weight_decay = 0.5});
    // First step: both parameters get a gradient.
    ga::sum(used * unused).backward();
    opt.step();
    const auto before = unused.value().to_vector();
    // Second step: only `used` is in the loss.
    if (set_to_none)
      opt.zero_grad();
    else
      opt.zero_grad(false);
    ga::sum(used * used).backward();
    opt.step();
    if (set_to_none) {
      CHECK_FALSE(unused.grad().defined());
      CHECK(unused.value().to_vector() == before);
      CHECK(opt.state(1).step == 1);
    } else {
      CHECK(unused.value().at(0) < before[0]);  // decayed with a zero gradient
      CHECK(opt.state(1).step == 2);
    }
  }
}
