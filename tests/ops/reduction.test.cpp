// Reductions: sum and mean over everything and over chosen axes, with and without keepdim.
// References are plain loops; the harness runs on the reduction alone and on its square
// (so that the second derivative in x is not identically zero).
#include "op_check.hpp"

using namespace op_check;

namespace {

// Harness on r(x) and on r(x)^2 for a reduction r.
template <class R>
void check_reduction(R r, const Tensor& x) {
  require_gradcheck([r](const auto& in) { return r(in[0]); }, {x});
  require_gradcheck(
      [r](const auto& in) {
        const auto y = r(in[0]);
        return y * y;
      },
      {x});
}

template <class R>
auto on_first(R r) {
  return [r](const auto& x) { return r(x[0]); };
}

// Sum over the flagged axes of x; `keepdim` keeps them with extent 1, else drops them.
Tensor sum_ref(const Tensor& x, const std::vector<bool>& reduce, bool keepdim) {
  const Tensor kept = sum_keepdim_ref(x, reduce);
  if (keepdim) return kept;
  Shape dropped;
  for (int d = 0; d < x.rank(); ++d)
    if (!reduce[d]) dropped.push_back(x.shape()[d]);
  return kept.reshape(dropped);
}

Tensor scaled(const Tensor& t, double s) {
  return map_ref(t, [s](double v) { return v * s; });
}

// x = [[1, 2, 3], [4, 5, 6]] for hand-worked values.
Tensor counting_2x3() {
  return tensor({2, 3}, {1, 2, 3, 4, 5, 6});
}

}  // namespace

TEST_CASE("sum over all elements", OP_TAGS("[reduction]")) {
  const auto f = [](const auto& x) { return sum(x); };
  require_value(on_first(f), {counting_2x3()}, Tensor::scalar(21));
  Generator gen(4001);
  const Tensor x = normal({2, 3, 4}, gen);
  require_value(on_first(f), {x}, sum_ref(x, {true, true, true}, false), 1e-13, 1e-14);
  check_reduction(f, x);
}

TEST_CASE("sum along one axis, keepdim = false", OP_TAGS("[reduction]")) {
  const auto over0 = [](const auto& x) { return sum(x, {0}); };
  const auto over1 = [](const auto& x) { return sum(x, {-1}); };
  require_value(on_first(over0), {counting_2x3()}, tensor({3}, {5, 7, 9}));
  require_value(on_first(over1), {counting_2x3()}, tensor({2}, {6, 15}));
  Generator gen(4002);
  const Tensor x = normal({2, 3, 4}, gen);
  const auto middle = [](const auto& v) { return sum(v, {1}); };
  require_value(on_first(middle), {x}, sum_ref(x, {false, true, false}, false), 1e-13, 1e-14);
  check_reduction(middle, x);
  check_reduction(over1, x);
}

TEST_CASE("sum along several axes, keepdim = true", OP_TAGS("[reduction]")) {
  const auto f = [](const auto& x) { return sum(x, {0, 2}, true); };
  require_value(on_first([](const auto& x) { return sum(x, {1}, true); }), {counting_2x3()},
                tensor({2, 1}, {6, 15}));
  Generator gen(4003);
  const Tensor x = normal({2, 3, 4}, gen);
  require_value(on_first(f), {x}, sum_ref(x, {true, false, true}, true), 1e-13, 1e-14);
  check_reduction(f, x);
}

TEST_CASE("sum along several axes, keepdim = false", OP_TAGS("[reduction]")) {
  const auto f = [](const auto& x) { return sum(x, {0, 2}); };
  Generator gen(4004);
  const Tensor x = normal({2, 3, 4}, gen);
  require_value(on_first(f), {x}, sum_ref(x, {true, false, true}, false), 1e-13, 1e-14);
  check_reduction(f, x);
}

TEST_CASE("mean over all elements", OP_TAGS("[reduction]")) {
  const auto f = [](const auto& x) { return mean(x); };
  require_value(on_first(f), {counting_2x3()}, Tensor::scalar(3.5));
  Generator gen(4005);
  const Tensor x = normal({2, 3, 4}, gen);
  require_value(on_first(f), {x}, scaled(sum_ref(x, {true, true, true}, false), 1.0 / 24), 1e-13,
                1e-14);
  check_reduction(f, x);
}

TEST_CASE("mean along axes, keepdim = false and true", OP_TAGS("[reduction]")) {
  const auto drop = [](const auto& x) { return mean(x, {1}); };
  const auto keep = [](const auto& x) { return mean(x, {0, -1}, true); };
  require_value(on_first([](const auto& x) { return mean(x, {0}); }), {counting_2x3()},
                tensor({3}, {2.5, 3.5, 4.5}));
  require_value(on_first([](const auto& x) { return mean(x, {1}, true); }), {counting_2x3()},
                tensor({2, 1}, {2, 5}));
  Generator gen(4006);
  const Tensor x = normal({2, 3, 4}, gen);
  require_value(on_first(drop), {x}, scaled(sum_ref(x, {false, true, false}, false), 1.0 / 3),
                1e-13, 1e-14);
  require_value(on_first(keep), {x}, scaled(sum_ref(x, {true, false, true}, true), 1.0 / 8), 1e-13,
                1e-14);
  check_reduction(drop, x);
  check_reduction(keep, x);
}

TEST_CASE("reductions of a broadcast product: sum(a * b, {0}) with a [3,1], b [4]",
          OP_TAGS("[reduction]")) {
  // The broadcast happens inside the reduced expression, so the VJP goes sum_to ->
  // broadcast_to -> mul -> sum_to in both directions.
  const auto f = [](const auto& x) { return mean(sum(x[0] * x[1], {0}) * x[1]); };
  Generator gen(4007);
  const Tensor a = normal({3, 1}, gen), b = normal({4}, gen);
  double expected = 0;
  for (index_t j = 0; j < 4; ++j) {
    double s = 0;
    for (index_t i = 0; i < 3; ++i) s += a.data()[i] * b.data()[j];
    expected += s * b.data()[j] / 4;
  }
  require_value(f, {a, b}, Tensor::scalar(expected), 1e-13, 1e-14);
  require_gradcheck(f, {a, b});
}
