// Layout primitives: transpose, permute, reshape, flatten, narrow and its adjoint, concat,
// stack, index_select / index_add (embedding lookup and its adjoint) and masked_fill.
// Each is linear, so the harness runs twice: on the op alone (its VJP-of-VJP checks that
// the recorded backward is itself differentiated correctly) and on op(x) * op(x) (a non-zero
// second derivative in x that flows through the op's backward twice).
#include <limits>

#include "op_check.hpp"

using namespace op_check;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Harness on op(x) and on op(x)^2 for a unary layout op.
template <class Op>
void check_linear_op(Op op, const Tensor& x) {
  require_gradcheck([op](const auto& in) { return op(in[0]); }, {x});
  require_gradcheck(
      [op](const auto& in) {
        const auto y = op(in[0]);
        return y * y;
      },
      {x});
}

// 0, 1, 2, ... in the given shape: makes hand-worked layouts easy to read.
Tensor iota(const Shape& s) {
  Tensor t = Tensor::empty(s);
  for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<double>(i);
  return t;
}

// out[i_0, ..., i_r] = x[j] with j[perm[d]] = i_d.
Tensor permute_ref(const Tensor& x, const std::vector<int>& perm) {
  Shape os;
  for (int a : perm) os.push_back(x.shape()[a]);
  Tensor out = Tensor::empty(os);
  for (index_t i = 0; i < out.numel(); ++i) {
    const auto oi = unravel(i, os);
    std::vector<index_t> xi(oi.size());
    for (std::size_t d = 0; d < perm.size(); ++d) xi[perm[d]] = oi[d];
    out.data()[i] = x.data()[ravel(xi, x.shape())];
  }
  return out;
}

// Entries [start, start + length) along `axis`.
Tensor narrow_ref(const Tensor& x, int axis, index_t start, index_t length) {
  Shape os = x.shape();
  os[axis] = length;
  Tensor out = Tensor::empty(os);
  for (index_t i = 0; i < out.numel(); ++i) {
    auto idx = unravel(i, os);
    idx[axis] += start;
    out.data()[i] = x.data()[ravel(idx, x.shape())];
  }
  return out;
}

// The parts laid side by side along `axis`.
Tensor concat_ref(const std::vector<Tensor>& parts, int axis) {
  Shape os = parts[0].shape();
  os[axis] = 0;
  for (const auto& p : parts) os[axis] += p.shape()[axis];
  Tensor out = Tensor::empty(os);
  for (index_t i = 0; i < out.numel(); ++i) {
    auto idx = unravel(i, os);
    std::size_t p = 0;
    while (idx[axis] >= parts[p].shape()[axis]) idx[axis] -= parts[p++].shape()[axis];
    out.data()[i] = parts[p].data()[ravel(idx, parts[p].shape())];
  }
  return out;
}

// The causal mask of a length-T sequence: 1 above the diagonal (future positions).
Tensor causal_mask(index_t T) {
  Tensor m = Tensor::zeros({T, T});
  for (index_t i = 0; i < T; ++i)
    for (index_t j = i + 1; j < T; ++j) m.at(i, j) = 1;
  return m;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// transpose, permute
// ---------------------------------------------------------------------------------------

TEST_CASE("transpose of a matrix", OP_TAGS("[layout]")) {
  const auto f = [](const auto& x) { return transpose(x); };
  require_value([f](const auto& x) { return f(x[0]); }, {iota({2, 3})},
                tensor({3, 2}, {0, 3, 1, 4, 2, 5}));
  Generator gen(3001);
  const Tensor x = normal({3, 4}, gen);
  require_value([f](const auto& in) { return f(in[0]); }, {x}, permute_ref(x, {1, 0}));
  check_linear_op(f, x);
}

TEST_CASE("transpose of a rank-3 tensor: last two axes and axes (0, 2)", OP_TAGS("[layout]")) {
  const auto last_two = [](const auto& x) { return transpose(x); };
  const auto outer = [](const auto& x) { return transpose(x, 0, 2); };
  Generator gen(3002);
  const Tensor x = normal({2, 3, 4}, gen);
  require_value([last_two](const auto& in) { return last_two(in[0]); }, {x},
                permute_ref(x, {0, 2, 1}));
  require_value([outer](const auto& in) { return outer(in[0]); }, {x}, permute_ref(x, {2, 1, 0}));
  check_linear_op(last_two, x);
  check_linear_op(outer, x);
}

TEST_CASE("permute of a rank-3 tensor", OP_TAGS("[layout]")) {
  const auto f = [](const auto& x) { return permute(x, {2, 0, 1}); };
  // x[i, j, k] = 6i + 3j + k... laid out as iota([2,2,3]); out[k, i, j] = x[i, j, k].
  require_value([f](const auto& x) { return f(x[0]); }, {iota({2, 2, 3})},
                tensor({3, 2, 2}, {0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11}));
  Generator gen(3003);
  const Tensor x = normal({2, 3, 4}, gen);
  require_value([f](const auto& in) { return f(in[0]); }, {x}, permute_ref(x, {2, 0, 1}));
  check_linear_op(f, x);
}

TEST_CASE("permute of a rank-4 tensor (attention head split and a full reversal)",
          OP_TAGS("[layout]")) {
  // [B, T, H, D] -> [B, H, T, D], as when splitting attention heads.
  const auto heads = [](const auto& x) { return permute(x, {0, 2, 1, 3}); };
  const auto scramble = [](const auto& x) { return permute(x, {3, 1, 0, 2}); };
  Generator gen(3004);
  const Tensor x = normal({2, 3, 2, 2}, gen);
  require_value([heads](const auto& in) { return heads(in[0]); }, {x},
                permute_ref(x, {0, 2, 1, 3}));
  require_value([scramble](const auto& in) { return scramble(in[0]); }, {x},
                permute_ref(x, {3, 1, 0, 2}));
  check_linear_op(heads, x);
  check_linear_op(scramble, x);
}

// ---------------------------------------------------------------------------------------
// reshape, flatten
// ---------------------------------------------------------------------------------------

TEST_CASE("reshape [2,6] -> [3,4] (and to rank 3)", OP_TAGS("[layout]")) {
  const auto f = [](const auto& x) { return reshape(x, Shape{3, 4}); };
  const auto g = [](const auto& x) { return reshape(x, Shape{2, 3, 2}); };
  Generator gen(3101);
  const Tensor x = normal({2, 6}, gen);
  // Row-major order is kept: the same numbers under a new shape.
  require_value([f](const auto& in) { return f(in[0]); }, {x}, x.clone().reshape({3, 4}));
  require_value([g](const auto& in) { return g(in[0]); }, {x}, x.clone().reshape({2, 3, 2}));
  check_linear_op(f, x);
  check_linear_op(g, x);
}

TEST_CASE("flatten from axis 1 and from axis 0", OP_TAGS("[layout]")) {
  const auto from1 = [](const auto& x) { return flatten(x); };
  const auto from0 = [](const auto& x) { return flatten(x, 0); };
  Generator gen(3102);
  const Tensor x = normal({2, 3, 2}, gen);
  require_value([from1](const auto& in) { return from1(in[0]); }, {x}, x.clone().reshape({2, 6}));
  require_value([from0](const auto& in) { return from0(in[0]); }, {x}, x.clone().reshape({12}));
  check_linear_op(from1, x);
  check_linear_op(from0, x);
}

// ---------------------------------------------------------------------------------------
// narrow, narrow_adjoint
// ---------------------------------------------------------------------------------------

TEST_CASE("narrow along axis 0", OP_TAGS("[layout]")) {
  const auto f = [](const auto& x) { return narrow(x, 0, 1, 2); };
  require_value([f](const auto& x) { return f(x[0]); }, {iota({4, 3})},
                tensor({2, 3}, {3, 4, 5, 6, 7, 8}));
  Generator gen(3201);
  const Tensor x = normal({4, 3}, gen);
  check_linear_op(f, x);
}

TEST_CASE("narrow along an inner axis (axis 1 of rank 3, and axis -1)", OP_TAGS("[layout]")) {
  const auto middle = [](const auto& x) { return narrow(x, 1, 1, 3); };
  const auto last = [](const auto& x) { return narrow(x, -1, 2, 2); };
  require_value([last](const auto& x) { return last(x[0]); }, {iota({2, 4})},
                tensor({2, 2}, {2, 3, 6, 7}));
  Generator gen(3202);
  const Tensor x = normal({2, 5, 3}, gen), y = normal({3, 4}, gen);
  require_value([middle](const auto& in) { return middle(in[0]); }, {x}, narrow_ref(x, 1, 1, 3));
  require_value([last](const auto& in) { return last(in[0]); }, {y}, narrow_ref(y, 1, 2, 2));
  check_linear_op(middle, x);
  check_linear_op(last, y);
}

TEST_CASE("narrow_adjoint pads a slice with zeros", OP_TAGS("[layout]")) {
  const auto f = [](const auto& g) { return narrow_adjoint(g, 1, 1, 4); };
  require_value([f](const auto& x) { return f(x[0]); }, {tensor({2, 2}, {1, 2, 3, 4})},
                tensor({2, 4}, {0, 1, 2, 0, 0, 3, 4, 0}));
  Generator gen(3203);
  const Tensor g = normal({2, 2, 3}, gen);
  // Adjoint identity with narrow: <narrow_adjoint(g), x> = <g, narrow(x)>.
  const Tensor x = normal({2, 4, 3}, gen);
  const Tensor padded = narrow_adjoint(g, 1, 1, 4);
  double lhs = 0, rhs = 0;
  for (index_t i = 0; i < x.numel(); ++i) lhs += padded.data()[i] * x.data()[i];
  const Tensor sliced = narrow_ref(x, 1, 1, 2);
  for (index_t i = 0; i < g.numel(); ++i) rhs += g.data()[i] * sliced.data()[i];
  CHECK(lhs == Approx(rhs).epsilon(1e-14));
  check_linear_op(f, g);
}

// ---------------------------------------------------------------------------------------
// concat, stack
// ---------------------------------------------------------------------------------------

TEST_CASE("concat of 3 inputs along an inner axis", OP_TAGS("[layout]")) {
  const auto f = [](const auto& x) { return concat(std::vector{x[0], x[1], x[2]}, 1); };
  require_value(
      [](const auto& x) {
        return concat(std::vector{x[0], x[1], x[2]}, -1);
      },
      {tensor({2, 1}, {1, 2}), tensor({2, 2}, {3, 4, 5, 6}), tensor({2, 3}, {7, 8, 9, 10, 11, 12})},
      tensor({2, 6}, {1, 3, 4, 7, 8, 9, 2, 5, 6, 10, 11, 12}));
  Generator gen(3301);
  const Tensor a = normal({2, 1, 3}, gen), b = normal({2, 2, 3}, gen), c = normal({2, 3, 3}, gen);
  require_value(f, {a, b, c}, concat_ref({a, b, c}, 1));
  require_gradcheck(f, {a, b, c});
  require_gradcheck(
      [f](const auto& x) {
        const auto y = f(x);
        return y * y;
      },
      {a, b, c});
  // A constant part in the middle: its tangent is a symbolic zero, its cotangent not needed.
  const Tensor k = normal({2, 2, 3}, gen);
  require_gradcheck(
      [k](const auto& x) {
        const auto y = concat(std::vector{x[0], constant_like(x[0], k), x[1]}, 1);
        return y * y;
      },
      {a, c});
}

TEST_CASE("stack along a new first, middle and last axis", OP_TAGS("[layout]")) {
  const auto first = [](const auto& x) { return stack(std::vector{x[0], x[1], x[2]}, 0); };
  const auto middle = [](const auto& x) { return stack(std::vector{x[0], x[1], x[2]}, 1); };
  const auto last = [](const auto& x) { return stack(std::vector{x[0], x[1], x[2]}, -1); };
  const Tensor p = tensor({2}, {1, 2}), q = tensor({2}, {3, 4}), r = tensor({2}, {5, 6});
  require_value(first, {p, q, r}, tensor({3, 2}, {1, 2, 3, 4, 5, 6}));
  require_value(middle, {p, q, r}, tensor({2, 3}, {1, 3, 5, 2, 4, 6}));
  require_value(last, {p, q, r}, tensor({2, 3}, {1, 3, 5, 2, 4, 6}));
  Generator gen(3302);
  const Tensor a = normal({2, 3}, gen), b = normal({2, 3}, gen), c = normal({2, 3}, gen);
  require_value(
      middle, {a, b, c},
      permute_ref(concat_ref({a.reshape({1, 2, 3}), b.reshape({1, 2, 3}), c.reshape({1, 2, 3})}, 0),
                  {1, 0, 2}));
  require_gradcheck(first, {a, b, c});
  require_gradcheck(middle, {a, b, c});
  require_gradcheck(
      [last](const auto& x) {
        const auto y = last(x);
        return y * y;
      },
      {a, b, c});
}

// ---------------------------------------------------------------------------------------
// index_select, index_add
// ---------------------------------------------------------------------------------------

TEST_CASE("index_select: embedding lookup with repeated indices of shape [2,3]",
          OP_TAGS("[layout]")) {
  const Indices ids({4, 0, 4, 2, 0, 4}, Shape{2, 3});
  const auto f = [ids](const auto& table) { return index_select(table, ids); };
  // Row r of the table is [3r, 3r + 1, 3r + 2].
  require_value([f](const auto& x) { return f(x[0]); }, {iota({5, 3})},
                tensor({2, 3, 3}, {12, 13, 14, 0, 1, 2, 12, 13, 14,  //
                                   6, 7, 8, 0, 1, 2, 12, 13, 14}));
  Generator gen(3401);
  const Tensor table = normal({5, 3}, gen);
  check_linear_op(f, table);
  // The gradient of the sum counts how often each row was looked up (row 1 and 3: never).
  const Var tv(table, true);
  const auto g = grokalign::grad<double>({sum(index_select(tv, ids))}, {tv});
  require_close(g[0].value(), tensor({5, 3}, {2, 2, 2, 0, 0, 0, 1, 1, 1, 0, 0, 0, 3, 3, 3}));
}

TEST_CASE("index_add: scatter-add of rows with repeated indices", OP_TAGS("[layout]")) {
  require_value(
      [](const auto& x) {
        return index_add(x[0], Indices({1, 1, 3}), 4);
      },
      {tensor({3, 2}, {1, 2, 3, 4, 5, 6})}, tensor({4, 2}, {0, 0, 4, 6, 0, 0, 5, 6}));
  const Indices ids({4, 0, 4, 2, 0, 4}, Shape{2, 3});
  const auto f = [ids](const auto& g) { return index_add(g, ids, 5); };
  Generator gen(3402);
  const Tensor g = normal({2, 3, 2}, gen);
  // Reference: add row (i, j) of g into row ids[i, j].
  Tensor expected = Tensor::zeros({5, 2});
  for (index_t n = 0; n < 6; ++n)
    for (index_t k = 0; k < 2; ++k) expected.at(ids[n], k) += g.data()[n * 2 + k];
  require_value([f](const auto& in) { return f(in[0]); }, {g}, expected, 1e-14, 1e-15);
  check_linear_op(f, g);
}

TEST_CASE("index_select and index_add reject indices outside the table", "[ops][layout][errors]") {
  const Tensor table = iota({4, 3});
  CHECK_THROWS(index_select(table, Indices({1, 4})));
  CHECK_THROWS(index_select(table, Indices({-1})));
  // The source has an empty trailing axis, so an implementation that does not validate the
  // indices writes nothing out of bounds here: the test fails cleanly instead of corrupting
  // memory.
  const Tensor empty_rows = Tensor::zeros({2, 0});
  CHECK_NOTHROW(index_add(empty_rows, Indices({0, 3}), 4));
  CHECK_THROWS(index_add(empty_rows, Indices({0, 4}), 4));
  CHECK_THROWS(index_add(empty_rows, Indices({-1, 0}), 4));
}

// ---------------------------------------------------------------------------------------
// masked_fill
// ---------------------------------------------------------------------------------------

TEST_CASE("masked_fill: causal mask [T,T] broadcast over [B,H,T,T]", OP_TAGS("[layout]")) {
  const Tensor mask = causal_mask(3);
  Generator gen(3501);
  const Tensor scores = normal({2, 2, 3, 3}, gen);

  // Values: -inf above the diagonal of every [T,T] block, the scores elsewhere.
  const Tensor filled = masked_fill(scores, mask, -kInf);
  Tensor expected = scores.clone();
  for (index_t i = 0; i < expected.numel(); ++i) {
    const auto idx = unravel(i, expected.shape());
    if (idx[3] > idx[2]) expected.data()[i] = -kInf;
  }
  require_close(filled, expected, 0, 0);
  require_value([](const auto& x) { return masked_fill(x[0], causal_mask(2), 7.0); },
                {tensor({1, 2, 2}, {1, 2, 3, 4})}, tensor({1, 2, 2}, {1, 7, 3, 4}));

  // Derivatives: the harness needs finite values, and the fill constant does not enter them.
  const auto f = [mask](const auto& x) { return masked_fill(x, mask, -3.0); };
  check_linear_op(f, scores);
  // A mask with the full rank ([B,1,T,T]: per-batch masks broadcast over heads).
  Tensor per_batch = Tensor::zeros({2, 1, 3, 3});
  per_batch.at(0, 0, 0, 2) = 1;
  per_batch.at(1, 0, 2, 0) = 1;
  check_linear_op([per_batch](const auto& x) { return masked_fill(x, per_batch, 0.5); }, scores);
}
