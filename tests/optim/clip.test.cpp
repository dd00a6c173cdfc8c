// Gradient clipping by value and by total L2 norm (PyTorch's clip_grad_value_ and
// clip_grad_norm_), including parameters without gradients and non-finite gradients.
#include "optim_helpers.hpp"

using namespace grokalign;
using namespace optim_test;
using Catch::Contains;

TEST_CASE("clip_grad_value clamps every entry", "[optim][clip]") {
  auto a = param(Vec{0, 0, 0, 0});
  auto b = param(Shape{2, 1}, Vec{0, 0});
  auto none = param(Vec{0});
  give_grad(a, {-3.0, 0.5, 2.0, -1.0});
  give_grad(b, {0.999, 1.001});
  clip_grad_value<double>({a, b, none}, 1.0);
  check_close(a.grad(), {-1.0, 0.5, 1.0, -1.0}, 0);
  check_close(b.grad(), {0.999, 1.0}, 0);
  CHECK_FALSE(none.grad().defined());

  SECTION("NaN entries stay NaN") {
    give_grad(a, {std::nan(""), 5.0, -INFINITY, 0.1});
    clip_grad_value<double>({a}, 0.5);
    CHECK(std::isnan(a.grad().at(0)));
    CHECK(a.grad().at(1) == 0.5);
    CHECK(a.grad().at(2) == -0.5);
    CHECK(a.grad().at(3) == 0.1);
  }
  SECTION("float") {
    auto f = param<float>(Vec{0, 0});
    give_grad(f, {-2.0, 0.25});
    clip_grad_value<float>({f}, 0.5);
    CHECK(f.grad().at(0) == -0.5f);
    CHECK(f.grad().at(1) == 0.25f);
  }
  SECTION("bad clip value") {
    CHECK_THROWS_WITH(clip_grad_value<double>({a}, -1.0),
                      Contains("clip_grad_value") && Contains("clip_value"));
    CHECK_THROWS_WITH(clip_grad_value<double>({a, Var<double>()}, 1.0),
                      Contains("clip_grad_value") && Contains("parameter 1"));
  }
}

TEST_CASE("clip_grad_norm returns the total norm and rescales above the threshold",
          "[optim][clip]") {
  auto a = param(Vec{0, 0});
  auto b = param(Shape{1, 1}, Vec{0});
  auto none = param(Vec{0, 0, 0});
  const std::vector<Var<double>> ps{a, b, none};

  SECTION("above the threshold: scaled by max_norm / (norm + 1e-6)") {
    give_grad(a, {3.0, 4.0});
    give_grad(b, {12.0});  // total norm sqrt(9 + 16 + 144) = 13
    const double norm = clip_grad_norm(ps, 6.5);
    CHECK(norm == Approx(13.0).epsilon(1e-15));
    const double s = 6.5 / (13.0 + 1e-6);
    check_close(a.grad(), {3.0 * s, 4.0 * s}, 1e-15);
    check_close(b.grad(), {12.0 * s}, 1e-15);
    // The clipped gradients now have norm max_norm (up to the 1e-6 guard).
    CHECK(clip_grad_norm(ps, 100.0) == Approx(6.5).epsilon(1e-6));
    CHECK_FALSE(none.grad().defined());
  }
  SECTION("below the threshold: untouched") {
    give_grad(a, {3.0, 4.0});
    give_grad(b, {12.0});
    CHECK(clip_grad_norm(ps, 20.0) == Approx(13.0).epsilon(1e-15));
    check_close(a.grad(), {3.0, 4.0}, 0);
    check_close(b.grad(), {12.0}, 0);
  }
  SECTION("no gradients at all: norm 0") {
    CHECK(clip_grad_norm(ps, 1.0) == 0.0);
  }
  SECTION("float, summed in double") {
    auto f = param<float>(Vec{0, 0, 0});
    give_grad(f, {1e20, 1e20, 0.0});  // squares overflow float, not double
    const float norm = clip_grad_norm<float>({f}, 1.0);
    CHECK(norm == Approx(std::sqrt(2.0) * 1e20).epsilon(1e-6));
    CHECK(f.grad().at(0) == Approx(1.0 / std::sqrt(2.0)).epsilon(1e-6));
  }
  SECTION("non-finite norms behave as in PyTorch, or throw on request") {
    give_grad(a, {INFINITY, 1.0});
    give_grad(b, {2.0});
    CHECK_THROWS_WITH(clip_grad_norm(ps, 1.0, /*error_if_nonfinite=*/true),
                      Contains("clip_grad_norm") && Contains("inf"));
    CHECK(a.grad().at(1) == 1.0);  // untouched by the refused call
    CHECK(std::isinf(clip_grad_norm(ps, 1.0)));
    CHECK(std::isnan(a.grad().at(0)));  // inf * 0
    CHECK(a.grad().at(1) == 0.0);
    CHECK(b.grad().at(0, 0) == 0.0);

    give_grad(a, {std::nan(""), 1.0});
    give_grad(b, {2.0});
    CHECK(std::isnan(clip_grad_norm(ps, 1.0)));
    CHECK(std::isnan(a.grad().at(1)));
    CHECK(std::isnan(b.grad().at(0, 0)));
  }
  SECTION("bad max_norm") {
    CHECK_THROWS_WITH(clip_grad_norm(ps, -1.0), Contains("clip_grad_norm") && Contains("max_norm"));
    CHECK_THROWS_WITH(clip_grad_norm(ps, std::nan("")), Contains("max_norm"));
  }
}
