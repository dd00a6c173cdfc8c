// Activations: relu, sigmoid, tanh, softplus, gelu, softmax and log_softmax (along the first,
// last and a middle axis). Values against hand-worked and std::-computed references
// (including the large-|x| regime where naive formulas overflow), the full harness on each,
// and the conventions at relu's kink.
#include <cmath>
#include <limits>

#include "op_check.hpp"

using namespace op_check;

namespace {

template <class F>
auto unary(F f) {
  return [f](const auto& x) { return f(x[0]); };
}

// Softmax (or log-softmax) along `axis`, by loops over multi-indices, max-shifted.
Tensor softmax_ref(const Tensor& x, int axis, bool log) {
  const Shape& s = x.shape();
  Tensor out = Tensor::empty(s);
  for (index_t i = 0; i < x.numel(); ++i) {
    auto idx = unravel(i, s);
    double mx = -std::numeric_limits<double>::infinity();
    for (index_t k = 0; k < s[axis]; ++k) {
      idx[axis] = k;
      mx = std::max(mx, x.data()[ravel(idx, s)]);
    }
    double total = 0;
    for (index_t k = 0; k < s[axis]; ++k) {
      idx[axis] = k;
      total += std::exp(x.data()[ravel(idx, s)] - mx);
    }
    const double shifted = x.data()[i] - mx;
    out.data()[i] = log ? shifted - std::log(total) : std::exp(shifted) / total;
  }
  return out;
}

bool all_finite(const Tensor& t) {
  for (double v : t)
    if (!std::isfinite(v)) return false;
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Element-wise activations
// ---------------------------------------------------------------------------------------

TEST_CASE("relu on inputs away from 0", OP_TAGS("[activation]")) {
  const auto f = [](const auto& x) { return relu(x); };
  require_value(unary(f), {tensor({4}, {-1, 0.5, 2, -3})}, tensor({4}, {0, 0.5, 2, 0}));
  Generator gen(2001);
  check_elementwise(
      f, [](double v) { return v > 0 ? v : 0.0; }, away_from({2, 3}, gen, {0.0}));
}

TEST_CASE("pass_where_positive: g where a constant reference is > 0 (relu's derivative)",
          OP_TAGS("[activation]")) {
  const Tensor ref = tensor({2, 3}, {1.5, 0, -2, 3, -0.5, 1e-300});
  const auto masked = [ref](const auto& x) { return pass_where_positive(x[0], ref); };
  require_value(masked, {tensor({2, 3}, {1, 2, 3, 4, 5, 6})}, tensor({2, 3}, {1, 0, 0, 4, 0, 6}));
  Generator gen(53);
  require_gradcheck(masked, {normal({2, 3}, gen)});
  CHECK_THROWS_WITH(pass_where_positive(tensor({2, 3}, {1, 2, 3, 4, 5, 6}), tensor({3}, {1, 1, 1})),
                    Catch::Contains("pass_where_positive"));
}

TEST_CASE("sigmoid, including saturated inputs", OP_TAGS("[activation]")) {
  const auto f = [](const auto& x) { return sigmoid(x); };
  // sigmoid(-1000) is exactly 0 and sigmoid(1000) exactly 1: no overflow, no NaN.
  require_value(unary(f), {tensor({4}, {0, 2, -1000, 1000})},
                tensor({4}, {0.5, 0.8807970779778823, 0, 1}), 1e-15, 0);
  Generator gen(2002);
  check_elementwise(
      f, [](double v) { return 1.0 / (1.0 + std::exp(-v)); }, normal({2, 3}, gen));
}

TEST_CASE("tanh", OP_TAGS("[activation]")) {
  const auto f = [](const auto& x) { return tanh(x); };
  require_value(unary(f), {tensor({3}, {0, 0.5, -2})},
                tensor({3}, {0, 0.46211715726000974, -0.9640275800758169}));
  Generator gen(2003);
  check_elementwise(
      f, [](double v) { return std::tanh(v); }, normal({2, 3}, gen));
}

TEST_CASE("softplus, including large |x|", OP_TAGS("[activation]")) {
  const auto f = [](const auto& x) { return softplus(x); };
  // softplus(100) == 100 and softplus(-100) == e^-100 ~ 3.7e-44 (no overflow, no underflow
  // to a wrong 0 from log(1 + tiny)).
  require_value(unary(f), {tensor({5}, {100, -100, 0, 2, -1})},
                tensor({5}, {100, 3.720075976020836e-44, 0.6931471805599453, 2.1269280110429727,
                             0.31326168751822286}),
                1e-14, 0);
  // Harness inputs straddle 0 and include +-30, where e^x alone is ~1e13 / ~1e-13.
  const Tensor x = tensor({2, 4}, {-30, -2.5, -0.7, 0.4, 1.3, 30, -0.1, 3});
  check_elementwise(
      f, [](double v) { return std::log1p(std::exp(v)); }, x);
}

TEST_CASE("gelu (exact, erf-based)", OP_TAGS("[activation]")) {
  const auto f = [](const auto& x) { return gelu(x); };
  require_value(unary(f), {tensor({5}, {0, 1, -1, 2, -3})},
                tensor({5}, {0, 0.8413447460685429, -0.15865525393145707, 1.9544997361036416,
                             -0.00404969409489031}),
                1e-13, 1e-16);
  Generator gen(2005);
  // x * Phi(x) with Phi written through erfc (a different route than the kernel's erf).
  const Tensor x = normal({2, 3}, gen);
  require_value(unary(f), {x},
                map_ref(x, [](double v) { return v * 0.5 * std::erfc(-v / std::sqrt(2.0)); }),
                1e-13, 1e-15);
  require_gradcheck(unary(f), {x});
}

// ---------------------------------------------------------------------------------------
// softmax / log_softmax
// ---------------------------------------------------------------------------------------

TEST_CASE("softmax along the last axis (-1)", OP_TAGS("[activation]")) {
  const auto f = [](const auto& x) { return softmax(x[0], -1); };
  require_value(f, {tensor({3}, {1, 2, 3})},
                tensor({3}, {0.09003057317038046, 0.24472847105479767, 0.6652409557748219}), 1e-15,
                0);
  // Shift invariance, and huge logits stay finite.
  require_value(
      f, {tensor({2, 3}, {1001, 1002, 1003, 1000, 0, -1000})},
      tensor({2, 3}, {0.09003057317038046, 0.24472847105479767, 0.6652409557748219, 1, 0, 0}),
      1e-13, 0);
  Generator gen(2101);
  const Tensor x = normal({3, 4}, gen);
  require_value(f, {x}, softmax_ref(x, 1, false), 1e-14, 1e-15);
  require_gradcheck(f, {x});
}

TEST_CASE("softmax along the first axis (0)", OP_TAGS("[activation]")) {
  const auto f = [](const auto& x) { return softmax(x[0], 0); };
  require_value(f, {tensor({3, 2}, {1, 0, 2, 0, 3, 0})},
                tensor({3, 2}, {0.09003057317038046, 1.0 / 3, 0.24472847105479767, 1.0 / 3,
                                0.6652409557748219, 1.0 / 3}),
                1e-15, 0);
  Generator gen(2102);
  const Tensor x = normal({4, 3}, gen);
  require_value(f, {x}, softmax_ref(x, 0, false), 1e-14, 1e-15);
  require_gradcheck(f, {x});
}

TEST_CASE("softmax along a middle axis of a rank-3 tensor", OP_TAGS("[activation]")) {
  const auto f = [](const auto& x) { return softmax(x[0], 1); };
  Generator gen(2103);
  const Tensor x = normal({2, 3, 4}, gen);
  require_value(f, {x}, softmax_ref(x, 1, false), 1e-14, 1e-15);
  // Every fibre along axis 1 sums to one.
  require_close(sum(softmax(x, 1), {1}), Tensor::ones({2, 4}), 1e-14, 1e-14);
  require_gradcheck(f, {x});
}

TEST_CASE("log_softmax along the last axis, finite for huge logits", OP_TAGS("[activation]")) {
  const auto f = [](const auto& x) { return log_softmax(x[0], -1); };
  require_value(f, {tensor({2, 3}, {1, 2, 3, 1000, 0, -1000})},
                tensor({2, 3}, {-2.40760596444438, -1.4076059644443801, -0.4076059644443803, 0,
                                -1000, -2000}),
                1e-14, 0);
  Generator gen(2201);
  const Tensor x = normal({3, 4}, gen);
  require_value(f, {x}, softmax_ref(x, 1, true), 1e-14, 1e-15);
  require_gradcheck(f, {x});
}

TEST_CASE("log_softmax along the first axis and a middle axis", OP_TAGS("[activation]")) {
  const auto first = [](const auto& x) { return log_softmax(x[0], 0); };
  const auto middle = [](const auto& x) { return log_softmax(x[0], 1); };
  Generator gen(2202);
  const Tensor a = normal({3, 4}, gen), b = normal({2, 3, 2}, gen);
  require_value(first, {a}, softmax_ref(a, 0, true), 1e-14, 1e-15);
  require_value(middle, {b}, softmax_ref(b, 1, true), 1e-14, 1e-15);
  require_gradcheck(first, {a});
  require_gradcheck(middle, {b});
}

TEST_CASE("activations composed: softmax(gelu(x) * sigmoid(y)) and tanh(softplus(x))",
          OP_TAGS("[activation]")) {
  const auto f = [](const auto& x) { return softmax(gelu(x[0]) * sigmoid(x[1]), -1); };
  const auto g = [](const auto& x) { return tanh(softplus(x[0])); };
  Generator gen(2301);
  const Tensor a = normal({2, 3}, gen), b = normal({2, 3}, gen);
  require_gradcheck(f, {a, b});
  require_gradcheck(g, {a});
  require_value(g, {a}, map_ref(a, [](double v) { return std::tanh(std::log1p(std::exp(v))); }),
                1e-14, 1e-15);
}

// ---------------------------------------------------------------------------------------
// Derivatives in the saturated regime stay finite
// ---------------------------------------------------------------------------------------

TEST_CASE("sigmoid, softplus and log_softmax derivatives are finite for huge inputs",
          "[ops][activation][stability]") {
  const Tensor x = tensor({4}, {-1000, -100, 100, 1000});
  const auto sig = [](const auto& v) { return sigmoid(v); };
  const auto sp = [](const auto& v) { return softplus(v); };
  require_close(elementwise_grad(sig, x), tensor({4}, {0, 3.720075976020836e-44, 0, 0}), 1e-14,
                1e-300);
  require_close(elementwise_grad(sp, x), tensor({4}, {0, 3.720075976020836e-44, 1, 1}), 1e-14,
                1e-300);
  require_close(elementwise_tangent(sp, x), tensor({4}, {0, 3.720075976020836e-44, 1, 1}), 1e-14,
                1e-300);

  const Var logits(tensor({1, 3}, {1000, 0, -1000}), true);
  const auto g = grokalign::grad<double>(
      {sum(mul_const(log_softmax(logits, -1), tensor({1, 3}, {0, 1, 0})))}, {logits});
  // d/dz log_softmax(z)[1] = e_1 - softmax(z) = [-1, 1, 0].
  REQUIRE(all_finite(g[0].value()));
  require_close(g[0].value(), tensor({1, 3}, {-1, 1, 0}), 1e-14, 1e-300);
}

// ---------------------------------------------------------------------------------------
// Conventions at relu's kink (as PyTorch)
// ---------------------------------------------------------------------------------------

TEST_CASE("relu'(0) = 0 in reverse and forward mode", "[ops][conventions][activation]") {
  const auto f = [](const auto& x) { return relu(x); };
  const Tensor x = tensor({4}, {0, -0.0, 2, -1});
  const Tensor expected = tensor({4}, {0, 0, 1, 0});
  require_close(elementwise_grad(f, x), expected);
  require_close(elementwise_tangent(f, x), expected);
}

TEST_CASE("relu's second derivative is a structural zero", "[ops][conventions][activation]") {
  // g = d/dx sum(relu(x) * w) = w * [x > 0]. Differentiating g again in x must give no graph
  // (g does not require grad through x) or an undefined / zero gradient, never a NaN.
  const Tensor x = tensor({2, 3}, {0, -1, 2, 0.5, -0.5, 3});
  const Tensor w = tensor({2, 3}, {1, 2, 3, 4, 5, 6});
  for (const bool w_requires_grad : {false, true}) {
    INFO("w requires grad: " << w_requires_grad);
    const Var xv(x, true), wv(w, w_requires_grad);
    const auto g = grokalign::grad<double>({sum(relu(xv) * wv)}, {xv}, {}, {.create_graph = true});
    require_close(g[0].value(), tensor({2, 3}, {0, 0, 3, 4, 0, 6}));
    if (!w_requires_grad) CHECK_FALSE(g[0].requires_grad());
    if (g[0].requires_grad()) {
      const auto h = grokalign::grad<double>({sum(g[0])}, {xv}, {}, {.allow_unused = true});
      CHECK((!h[0].defined() || all_zero(h[0].value())));
    }
  }
  // The same through forward-over-reverse: the Hessian-vector product is zero.
  const Var xv(x, true);
  const auto g =
      grokalign::grad<double>({sum(relu(xv) * Var(w))}, {xv}, {}, {.create_graph = true});
  const auto hvp = grokalign::jvp_graph<double>({g[0]}, {xv}, {Tensor::ones(x.shape())});
  CHECK(all_zero(hvp[0]));
}
