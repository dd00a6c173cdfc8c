// Arithmetic primitives: add, sub, mul, div (same shape and every broadcasting form), neg,
// the scalar forms, mul_const, and the broadcast_to / sum_to pair.
#include "op_check.hpp"

using namespace op_check;

namespace {

// The binary ops as generic callables: the same lambda runs on Tensor/Var/Dual and on
// doubles, the latter giving the reference values (through op_check::zip_ref).
constexpr auto kAdd = [](const auto& a, const auto& b) { return a + b; };
constexpr auto kSub = [](const auto& a, const auto& b) { return a - b; };
constexpr auto kMul = [](const auto& a, const auto& b) { return a * b; };
constexpr auto kDiv = [](const auto& a, const auto& b) { return a / b; };

// A binary op as a function of the harness's input list.
template <class Op>
auto on_inputs(Op op) {
  return [op](const auto& x) { return op(x[0], x[1]); };
}

// Random operands of the given shapes (b away from zero for division): the value against
// the loop reference, then the full harness.
template <class Op>
void check_binary(Op op, const Shape& sa, const Shape& sb, std::uint64_t seed,
                  bool b_away_from_zero = false) {
  Generator gen(seed);
  const Tensor a = normal(sa, gen);
  const Tensor b = b_away_from_zero ? signed_uniform(sb, gen, 0.5, 2.0) : normal(sb, gen);
  require_value(on_inputs(op), {a, b}, zip_ref(a, b, op));
  require_gradcheck(on_inputs(op), {a, b});
}

// Hand-worked operands: A = [[1, 2, 3], [4, 5, 6]] against a same-shaped B, the row
// [10, 20, 30], the column [[10], [20]] and the scalar 2.
Tensor A() {
  return tensor({2, 3}, {1, 2, 3, 4, 5, 6});
}
Tensor B() {
  return tensor({2, 3}, {0.5, -1, 2, 4, -5, 8});
}
Tensor row() {
  return tensor({3}, {10, 20, 30});
}
Tensor column() {
  return tensor({2, 1}, {10, 20});
}
Tensor scalar2() {
  return Tensor::scalar(2.0);
}

}  // namespace

// ---------------------------------------------------------------------------------------
// add
// ---------------------------------------------------------------------------------------

TEST_CASE("add: same shape [2,3] + [2,3]", OP_TAGS("[arithmetic]")) {
  require_value(on_inputs(kAdd), {A(), B()}, tensor({2, 3}, {1.5, 1, 5, 8, 0, 14}));
  check_binary(kAdd, {2, 3}, {2, 3}, 101);
}
TEST_CASE("add: row vector [4] broadcast over [3,4]", OP_TAGS("[arithmetic]")) {
  require_value(on_inputs(kAdd), {A(), row()}, tensor({2, 3}, {11, 22, 33, 14, 25, 36}));
  check_binary(kAdd, {3, 4}, {4}, 102);
}
TEST_CASE("add: column [3,1] broadcast over [3,4]", OP_TAGS("[arithmetic]")) {
  require_value(on_inputs(kAdd), {A(), column()}, tensor({2, 3}, {11, 12, 13, 24, 25, 26}));
  check_binary(kAdd, {3, 4}, {3, 1}, 103);
}
TEST_CASE("add: scalar-shaped [] operand broadcast over [3,4]", OP_TAGS("[arithmetic]")) {
  require_value(on_inputs(kAdd), {A(), scalar2()}, tensor({2, 3}, {3, 4, 5, 6, 7, 8}));
  check_binary(kAdd, {3, 4}, {}, 104);
}
TEST_CASE("add: outer broadcast [3,1] + [1,4]", OP_TAGS("[arithmetic]")) {
  require_value(on_inputs(kAdd), {column(), tensor({1, 3}, {1, 2, 3})},
                tensor({2, 3}, {11, 12, 13, 21, 22, 23}));
  check_binary(kAdd, {3, 1}, {1, 4}, 105);
}

// ---------------------------------------------------------------------------------------
// sub (not symmetric: also with the broadcast operand on the left)
// ---------------------------------------------------------------------------------------

TEST_CASE("sub: same shape [2,3] - [2,3]", OP_TAGS("[arithmetic]")) {
  require_value(on_inputs(kSub), {A(), B()}, tensor({2, 3}, {0.5, 3, 1, 0, 10, -2}));
  check_binary(kSub, {2, 3}, {2, 3}, 201);
}
TEST_CASE("sub: row vector [4] broadcast over [3,4]", OP_TAGS("[arithmetic]")) {
  require_value(on_inputs(kSub), {A(), row()}, tensor({2, 3}, {-9, -18, -27, -6, -15, -24}));
  check_binary(kSub, {3, 4}, {4}, 202);
}
TEST_CASE("sub: column [3,1] broadcast over [3,4]", OP_TAGS("[arithmetic]")) {
  require_value(on_inputs(kSub), {A(), column()}, tensor({2, 3}, {-9, -8, -7, -16, -15, -14}));
  check_binary(kSub, {3, 4}, {3, 1}, 203);
}
TEST_CASE("sub: scalar-shaped [] operand broadcast over [3,4]", OP_TAGS("[arithmetic]")) {
  require_value(on_inputs(kSub), {A(), scalar2()}, tensor({2, 3}, {-1, 0, 1, 2, 3, 4}));
  check_binary(kSub, {3, 4}, {}, 204);
}
TEST_CASE("sub: broadcast operand on the left, [4] - [3,4] and [] - [3,4]",
          OP_TAGS("[arithmetic]")) {
  require_value(on_inputs(kSub), {row(), A()}, tensor({2, 3}, {9, 18, 27, 6, 15, 24}));
  require_value(on_inputs(kSub), {scalar2(), A()}, tensor({2, 3}, {1, 0, -1, -2, -3, -4}));
  check_binary(kSub, {4}, {3, 4}, 205);
  check_binary(kSub, {}, {3, 4}, 206);
}
TEST_CASE("sub: outer broadcast [3,1] - [1,4]", OP_TAGS("[arithmetic]")) {
  require_value(on_inputs(kSub), {column(), tensor({1, 3}, {1, 2, 3})},
                tensor({2, 3}, {9, 8, 7, 19, 18, 17}));
  check_binary(kSub, {3, 1}, {1, 4}, 207);
}

// ---------------------------------------------------------------------------------------
// mul
// ---------------------------------------------------------------------------------------

TEST_CASE("mul: same shape [2,3] * [2,3]", OP_TAGS("[arithmetic]")) {
  require_value(on_inputs(kMul), {A(), B()}, tensor({2, 3}, {0.5, -2, 6, 16, -25, 48}));
  check_binary(kMul, {2, 3}, {2, 3}, 301);
}
TEST_CASE("mul: row vector [4] broadcast over [3,4]", OP_TAGS("[arithmetic]")) {
  require_value(on_inputs(kMul), {A(), row()}, tensor({2, 3}, {10, 40, 90, 40, 100, 180}));
  check_binary(kMul, {3, 4}, {4}, 302);
}
TEST_CASE("mul: column [3,1] broadcast over [3,4]", OP_TAGS("[arithmetic]")) {
  require_value(on_inputs(kMul), {A(), column()}, tensor({2, 3}, {10, 20, 30, 80, 100, 120}));
  check_binary(kMul, {3, 4}, {3, 1}, 303);
}
TEST_CASE("mul: scalar-shaped [] operand broadcast over [3,4]", OP_TAGS("[arithmetic]")) {
  require_value(on_inputs(kMul), {A(), scalar2()}, tensor({2, 3}, {2, 4, 6, 8, 10, 12}));
  check_binary(kMul, {3, 4}, {}, 304);
}
TEST_CASE("mul: outer broadcast [3,1] * [1,4]", OP_TAGS("[arithmetic]")) {
  require_value(on_inputs(kMul), {column(), tensor({1, 3}, {1, 2, 3})},
                tensor({2, 3}, {10, 20, 30, 20, 40, 60}));
  check_binary(kMul, {3, 1}, {1, 4}, 305);
}
TEST_CASE("mul: an operand times itself (both inputs are the same leaf)", OP_TAGS("[arithmetic]")) {
  const auto square_by_mul = [](const auto& x) { return x[0] * x[0]; };
  require_value(square_by_mul, {tensor({3}, {-2, 0.5, 3})}, tensor({3}, {4, 0.25, 9}));
  Generator gen(306);
  require_gradcheck(square_by_mul, {normal({2, 3}, gen)});
}

// ---------------------------------------------------------------------------------------
// div (divisors kept away from zero)
// ---------------------------------------------------------------------------------------

TEST_CASE("div: same shape [2,3] / [2,3]", OP_TAGS("[arithmetic]")) {
  require_value(on_inputs(kDiv), {A(), B()}, tensor({2, 3}, {2, -2, 1.5, 1, -1, 0.75}));
  check_binary(kDiv, {2, 3}, {2, 3}, 401, true);
}
TEST_CASE("div: row vector [4] broadcast over [3,4]", OP_TAGS("[arithmetic]")) {
  require_value(on_inputs(kDiv), {A(), row()}, tensor({2, 3}, {0.1, 0.1, 0.1, 0.4, 0.25, 0.2}));
  check_binary(kDiv, {3, 4}, {4}, 402, true);
}
TEST_CASE("div: column [3,1] broadcast over [3,4]", OP_TAGS("[arithmetic]")) {
  require_value(on_inputs(kDiv), {A(), column()}, tensor({2, 3}, {0.1, 0.2, 0.3, 0.2, 0.25, 0.3}));
  check_binary(kDiv, {3, 4}, {3, 1}, 403, true);
}
TEST_CASE("div: scalar-shaped [] divisor broadcast over [3,4]", OP_TAGS("[arithmetic]")) {
  require_value(on_inputs(kDiv), {A(), scalar2()}, tensor({2, 3}, {0.5, 1, 1.5, 2, 2.5, 3}));
  check_binary(kDiv, {3, 4}, {}, 404, true);
}
TEST_CASE("div: broadcast numerator, [4] / [3,4] and [] / [3,4]", OP_TAGS("[arithmetic]")) {
  require_value(on_inputs(kDiv), {row(), A()}, tensor({2, 3}, {10, 10, 10, 2.5, 4, 5}));
  require_value(on_inputs(kDiv), {scalar2(), A()},
                tensor({2, 3}, {2, 1, 2.0 / 3, 0.5, 0.4, 1.0 / 3}));
  check_binary(kDiv, {4}, {3, 4}, 405, true);
  check_binary(kDiv, {}, {3, 4}, 406, true);
}
TEST_CASE("div: outer broadcast [3,1] / [1,4]", OP_TAGS("[arithmetic]")) {
  require_value(on_inputs(kDiv), {column(), tensor({1, 3}, {1, 2, 4})},
                tensor({2, 3}, {10, 5, 2.5, 20, 10, 5}));
  check_binary(kDiv, {3, 1}, {1, 4}, 407, true);
}

// ---------------------------------------------------------------------------------------
// One operand constant: its tangent is a symbolic zero and its cotangent is not requested,
// which takes the one-sided branches of each rule (with broadcasting on either side).
// ---------------------------------------------------------------------------------------

TEST_CASE("add, sub, mul, div with a constant operand on either side, broadcast",
          OP_TAGS("[arithmetic]")) {
  Generator gen(451);
  const Tensor big = signed_uniform({3, 4}, gen, 0.5, 2.0);
  const Tensor row4 = signed_uniform({4}, gen, 0.5, 2.0);
  const Tensor col = signed_uniform({3, 1}, gen, 0.5, 2.0);
  const auto check = [&](const char* name, auto op) {
    INFO(name);
    // constant [3,4] op variable [4], and variable [3,4] op constant [3,1]
    const auto const_left = [op, big](const auto& x) { return op(constant_like(x[0], big), x[0]); };
    const auto const_right = [op, col](const auto& x) {
      return op(x[0], constant_like(x[0], col));
    };
    require_value(const_left, {row4}, zip_ref(big, row4, op));
    require_value(const_right, {big}, zip_ref(big, col, op));
    require_gradcheck(const_left, {row4});
    require_gradcheck(const_right, {big});
  };
  check("add", kAdd);
  check("sub", kSub);
  check("mul", kMul);
  check("div", kDiv);
}

// ---------------------------------------------------------------------------------------
// neg and the scalar forms
// ---------------------------------------------------------------------------------------

TEST_CASE("neg", OP_TAGS("[arithmetic]")) {
  Generator gen(501);
  const auto f = [](const auto& x) { return -x; };
  require_value([f](const auto& x) { return f(x[0]); }, {tensor({3}, {1, -2, 0.5})},
                tensor({3}, {-1, 2, -0.5}));
  check_elementwise(
      f, [](double v) { return -v; }, normal({2, 3}, gen));
}

TEST_CASE("scalar arithmetic: x + s", OP_TAGS("[arithmetic]")) {
  Generator gen(511);
  const auto f = [](const auto& x) { return x + 1.5; };
  require_value([f](const auto& x) { return f(x[0]); }, {tensor({2}, {1, -2})},
                tensor({2}, {2.5, -0.5}));
  check_elementwise(
      f, [](double v) { return v + 1.5; }, normal({2, 3}, gen));
}
TEST_CASE("scalar arithmetic: s - x", OP_TAGS("[arithmetic]")) {
  Generator gen(512);
  const auto f = [](const auto& x) { return 1.5 - x; };
  require_value([f](const auto& x) { return f(x[0]); }, {tensor({2}, {1, -2})},
                tensor({2}, {0.5, 3.5}));
  check_elementwise(
      f, [](double v) { return 1.5 - v; }, normal({2, 3}, gen));
}
TEST_CASE("scalar arithmetic: x * s and s * x", OP_TAGS("[arithmetic]")) {
  Generator gen(513);
  const auto f = [](const auto& x) { return x * -2.5 + 0.5 * x; };
  require_value([f](const auto& x) { return f(x[0]); }, {tensor({2}, {1, -2})},
                tensor({2}, {-2, 4}));
  check_elementwise(
      f, [](double v) { return v * -2.5 + 0.5 * v; }, normal({2, 3}, gen));
}
TEST_CASE("scalar arithmetic: x / s", OP_TAGS("[arithmetic]")) {
  Generator gen(514);
  const auto f = [](const auto& x) { return x / 4.0; };
  require_value([f](const auto& x) { return f(x[0]); }, {tensor({2}, {1, -2})},
                tensor({2}, {0.25, -0.5}));
  check_elementwise(
      f, [](double v) { return v / 4.0; }, normal({2, 3}, gen));
}
TEST_CASE("scalar arithmetic: s / x", OP_TAGS("[arithmetic]")) {
  Generator gen(515);
  const auto f = [](const auto& x) { return 3.0 / x; };
  require_value([f](const auto& x) { return f(x[0]); }, {tensor({3}, {1, -2, 0.5})},
                tensor({3}, {3, -1.5, 6}));
  check_elementwise(
      f, [](double v) { return 3.0 / v; }, signed_uniform({2, 3}, gen, 0.5, 2.0));
}

// ---------------------------------------------------------------------------------------
// mul_const, broadcast_to, sum_to
// ---------------------------------------------------------------------------------------

TEST_CASE("mul_const: x times a constant tensor (a 0/1 mask and arbitrary weights)",
          OP_TAGS("[arithmetic]")) {
  const Tensor mask = tensor({2, 3}, {1, 0, 1, 0, 0, 1});
  const auto masked = [mask](const auto& x) { return mul_const(x[0], mask); };
  require_value(masked, {A()}, tensor({2, 3}, {1, 0, 3, 0, 0, 6}));

  Generator gen(601);
  const Tensor weights = normal({2, 3}, gen);
  const auto weighted = [weights](const auto& x) { return mul_const(x[0], weights); };
  const Tensor x = normal({2, 3}, gen);
  require_value(weighted, {x}, zip_ref(x, weights, kMul));
  require_gradcheck(masked, {normal({2, 3}, gen)});
  require_gradcheck(weighted, {x});
}

TEST_CASE("broadcast_to: [3] to [2,3] and [3,1] to [2,3,4]", OP_TAGS("[arithmetic]")) {
  const auto to_2x3 = [](const auto& x) { return broadcast_to(x[0], Shape{2, 3}); };
  require_value(to_2x3, {tensor({3}, {1, 2, 3})}, tensor({2, 3}, {1, 2, 3, 1, 2, 3}));

  Generator gen(701);
  const Tensor x = normal({3, 1}, gen);
  const auto to_2x3x4 = [](const auto& in) { return broadcast_to(in[0], Shape{2, 3, 4}); };
  require_value(to_2x3x4, {x}, zip_ref(x, Tensor::zeros({2, 3, 4}), kAdd));
  require_gradcheck(to_2x3x4, {x});
  require_gradcheck(to_2x3, {normal({3}, gen)});
}

TEST_CASE("sum_to: [2,3,4] down to [3,1], [4] and []", OP_TAGS("[arithmetic]")) {
  require_value([](const auto& x) { return sum_to(x[0], Shape{3}); }, {A()},
                tensor({3}, {5, 7, 9}));
  require_value(
      [](const auto& x) {
        return sum_to(x[0], Shape{2, 1});
      },
      {A()}, tensor({2, 1}, {6, 15}));
  require_value([](const auto& x) { return sum_to(x[0], Shape{}); }, {A()}, Tensor::scalar(21));

  Generator gen(801);
  const Tensor x = normal({2, 3, 4}, gen);
  const auto to_3x1 = [](const auto& in) { return sum_to(in[0], Shape{3, 1}); };
  require_value(to_3x1, {x}, sum_keepdim_ref(x, {true, false, true}).reshape({3, 1}), 1e-12, 1e-12);
  require_gradcheck(to_3x1, {x});
  require_gradcheck([](const auto& in) { return sum_to(in[0], Shape{4}); }, {x});
  require_gradcheck([](const auto& in) { return sum_to(in[0], Shape{}); }, {x});
}
