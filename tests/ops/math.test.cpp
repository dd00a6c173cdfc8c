// Element-wise math: exp, log, sqrt, pow, abs, clamp / maximum / minimum, erf. Each op: a
// value check against hand-worked numbers and against std:: on random inputs, then the full
// harness on inputs inside the op's smooth domain. The conventions at the kinks (abs at 0,
// clamp at its bounds) are checked separately.
#include <limits>

#include "op_check.hpp"

using namespace op_check;

namespace {
constexpr double kInfinity = std::numeric_limits<double>::infinity();

// f on a one-element input list, for require_value.
template <class F>
auto one_input(F f) {
  return [f](const auto& x) { return f(x[0]); };
}
}  // namespace

TEST_CASE("exp", OP_TAGS("[math]")) {
  const auto f = [](const auto& x) { return exp(x); };
  require_value(one_input(f), {tensor({3}, {0, 1, -1})},
                tensor({3}, {1, 2.718281828459045, 0.36787944117144233}));
  Generator gen(1001);
  check_elementwise(
      f, [](double v) { return std::exp(v); }, normal({2, 3}, gen));
}

TEST_CASE("log on positive inputs", OP_TAGS("[math]")) {
  const auto f = [](const auto& x) { return log(x); };
  require_value(one_input(f), {tensor({3}, {1, 2, 0.5})},
                tensor({3}, {0, 0.6931471805599453, -0.6931471805599453}));
  Generator gen(1002);
  check_elementwise(
      f, [](double v) { return std::log(v); }, uniform({2, 3}, gen, 0.5, 3.0));
}

TEST_CASE("sqrt on positive inputs", OP_TAGS("[math]")) {
  const auto f = [](const auto& x) { return sqrt(x); };
  require_value(one_input(f), {tensor({3}, {4, 0.25, 2})},
                tensor({3}, {2, 0.5, 1.4142135623730951}));
  Generator gen(1003);
  check_elementwise(
      f, [](double v) { return std::sqrt(v); }, uniform({2, 3}, gen, 0.5, 3.0));
}

TEST_CASE("pow: p = 2 (and square)", OP_TAGS("[math]")) {
  const auto f = [](const auto& x) { return pow(x, 2.0); };
  require_value(one_input(f), {tensor({3}, {-3, 0.5, 2})}, tensor({3}, {9, 0.25, 4}));
  require_value(one_input([](const auto& x) { return square(x); }), {tensor({2}, {-3, 0.5})},
                tensor({2}, {9, 0.25}));
  Generator gen(1004);
  check_elementwise(
      f, [](double v) { return v * v; }, normal({2, 3}, gen));
}

TEST_CASE("pow: p = 3", OP_TAGS("[math]")) {
  const auto f = [](const auto& x) { return pow(x, 3.0); };
  require_value(one_input(f), {tensor({3}, {-2, 0.5, 3})}, tensor({3}, {-8, 0.125, 27}));
  Generator gen(1005);
  check_elementwise(
      f, [](double v) { return v * v * v; }, normal({2, 3}, gen));
}

TEST_CASE("pow: p = 0.5 on positive inputs", OP_TAGS("[math]")) {
  const auto f = [](const auto& x) { return pow(x, 0.5); };
  require_value(one_input(f), {tensor({3}, {4, 0.25, 9})}, tensor({3}, {2, 0.5, 3}));
  Generator gen(1006);
  check_elementwise(
      f, [](double v) { return std::sqrt(v); }, uniform({2, 3}, gen, 0.5, 3.0));
}

TEST_CASE("pow: p = -1 on inputs away from 0", OP_TAGS("[math]")) {
  const auto f = [](const auto& x) { return pow(x, -1.0); };
  require_value(one_input(f), {tensor({3}, {-2, 0.5, 4})}, tensor({3}, {-0.5, 2, 0.25}));
  Generator gen(1007);
  check_elementwise(
      f, [](double v) { return 1.0 / v; }, signed_uniform({2, 3}, gen, 0.5, 2.0));
}

TEST_CASE("pow: p = 0 and p = 1 (constant and identity)", OP_TAGS("[math]")) {
  const auto p0 = [](const auto& x) { return pow(x, 0.0); };
  const auto p1 = [](const auto& x) { return pow(x, 1.0); };
  require_value(one_input(p0), {tensor({3}, {-2, 0.5, 4})}, tensor({3}, {1, 1, 1}));
  require_value(one_input(p1), {tensor({3}, {-2, 0.5, 4})}, tensor({3}, {-2, 0.5, 4}));
  Generator gen(1008);
  const Tensor x = signed_uniform({2, 3}, gen, 0.5, 2.0);
  check_elementwise(
      p0, [](double) { return 1.0; }, x);
  check_elementwise(
      p1, [](double v) { return v; }, x);
  require_close(elementwise_grad(p0, x), Tensor::zeros(x.shape()));
  require_close(elementwise_grad(p1, x), Tensor::ones(x.shape()));
}

TEST_CASE("abs on inputs away from 0", OP_TAGS("[math]")) {
  const auto f = [](const auto& x) { return abs(x); };
  require_value(one_input(f), {tensor({3}, {-2, 0.5, -0.25})}, tensor({3}, {2, 0.5, 0.25}));
  Generator gen(1009);
  check_elementwise(
      f, [](double v) { return std::abs(v); }, away_from({2, 3}, gen, {0.0}));
}

TEST_CASE("clamp on inputs away from the bounds", OP_TAGS("[math]")) {
  const auto f = [](const auto& x) { return clamp(x, -0.5, 0.8); };
  require_value(one_input(f), {tensor({4}, {-2, 0, 0.3, 5})}, tensor({4}, {-0.5, 0, 0.3, 0.8}));
  Generator gen(1010);
  check_elementwise(
      f, [](double v) { return std::min(std::max(v, -0.5), 0.8); },
      away_from({2, 4}, gen, {-0.5, 0.8}));
}

TEST_CASE("maximum with a constant, inputs away from it", OP_TAGS("[math]")) {
  const auto f = [](const auto& x) { return maximum(x, 0.2); };
  require_value(one_input(f), {tensor({3}, {-1, 0.2, 3})}, tensor({3}, {0.2, 0.2, 3}));
  Generator gen(1011);
  check_elementwise(
      f, [](double v) { return std::max(v, 0.2); }, away_from({2, 3}, gen, {0.2}));
}

TEST_CASE("minimum with a constant, inputs away from it", OP_TAGS("[math]")) {
  const auto f = [](const auto& x) { return minimum(x, -0.3); };
  require_value(one_input(f), {tensor({3}, {-1, -0.3, 3})}, tensor({3}, {-1, -0.3, -0.3}));
  Generator gen(1012);
  check_elementwise(
      f, [](double v) { return std::min(v, -0.3); }, away_from({2, 3}, gen, {-0.3}));
}

TEST_CASE("erf", OP_TAGS("[math]")) {
  const auto f = [](const auto& x) { return erf(x); };
  require_value(one_input(f), {tensor({4}, {0, 0.5, -1, 2})},
                tensor({4}, {0, 0.5204998778130465, -0.8427007929497149, 0.9953222650189527}));
  Generator gen(1013);
  check_elementwise(
      f, [](double v) { return std::erf(v); }, normal({2, 3}, gen));
}

TEST_CASE("exp, log and sqrt composed: log(1 + exp(x)) and sqrt(x * x + 1)", OP_TAGS("[math]")) {
  const auto f = [](const auto& x) { return log(exp(x[0]) + 1.0) * sqrt(x[1] * x[1] + 1.0); };
  Generator gen(1014);
  const Tensor a = normal({2, 3}, gen), b = normal({2, 3}, gen);
  require_value(f, {a, b},
                zip_ref(a, b,
                        [](double u, double v) {
                          return std::log(std::exp(u) + 1.0) * std::sqrt(v * v + 1.0);
                        }),
                1e-14, 1e-14);
  require_gradcheck(f, {a, b});
}

// ---------------------------------------------------------------------------------------
// Conventions at non-differentiable points (as PyTorch)
// ---------------------------------------------------------------------------------------

TEST_CASE("abs'(0) = 0 in reverse and forward mode", "[ops][conventions][math]") {
  const auto f = [](const auto& x) { return abs(x); };
  const Tensor x = tensor({4}, {0, -0.0, 2, -1});
  const Tensor expected = tensor({4}, {0, 0, 1, -1});
  require_close(elementwise_grad(f, x), expected);
  require_close(elementwise_tangent(f, x), expected);
}

TEST_CASE("clamp passes the gradient at its bounds (x == lo and x == hi give 1)",
          "[ops][conventions][math]") {
  const auto f = [](const auto& x) { return clamp(x, -0.5, 0.8); };
  const Tensor x = tensor({5}, {-0.5, 0.8, -1.5, 1.8, 0.1});
  const Tensor expected = tensor({5}, {1, 1, 0, 0, 1});
  require_close(elementwise_grad(f, x), expected);
  require_close(elementwise_tangent(f, x), expected);
}

TEST_CASE("maximum and minimum pass the gradient where x equals the constant",
          "[ops][conventions][math]") {
  const auto mx = [](const auto& x) { return maximum(x, 0.2); };
  const auto mn = [](const auto& x) { return minimum(x, 0.2); };
  const Tensor x = tensor({3}, {0.2, -1, 1});
  require_close(elementwise_grad(mx, x), tensor({3}, {1, 0, 1}));
  require_close(elementwise_tangent(mx, x), tensor({3}, {1, 0, 1}));
  require_close(elementwise_grad(mn, x), tensor({3}, {1, 1, 0}));
  require_close(elementwise_tangent(mn, x), tensor({3}, {1, 1, 0}));
  // Unbounded sides stay unbounded: maximum never caps from above.
  require_value(one_input(mx), {tensor({2}, {1e300, -kInfinity})}, tensor({2}, {1e300, 0.2}));
}

TEST_CASE("abs and clamp have a structurally zero second derivative", "[ops][conventions][math]") {
  // d/dx sum(f(x) * w) is a constant mask times w: differentiating it again in x gives no
  // graph at all (or zeros), never a NaN.
  const Tensor x = tensor({4}, {0, -0.5, 0.8, 2});
  const Tensor w = tensor({4}, {1, 2, 3, 4});
  const auto check = [&](auto f) {
    const Var xv(x, true), wv(w, true);
    const auto g = grokalign::grad<double>({sum(f(xv) * wv)}, {xv}, {}, {.create_graph = true});
    if (g[0].requires_grad()) {
      const auto h = grokalign::grad<double>({sum(g[0])}, {xv}, {}, {.allow_unused = true});
      CHECK((!h[0].defined() || all_zero(h[0].value())));
    }
  };
  check([](const auto& v) { return abs(v); });
  check([](const auto& v) { return clamp(v, -0.5, 0.8); });
}
