// argmax and max along an axis: hand-worked values, ties and NaN as PyTorch treats them,
// shapes with and without keepdim, and max's derivatives through the full harness.
#include "op_check.hpp"

using namespace op_check;

namespace {

std::vector<index_t> values_of(const Indices& idx) {
  return std::vector<index_t>(idx.values->begin(), idx.values->end());
}

// x = [[1, 5, 3], [4, 2, 6]].
Tensor unsorted_2x3() {
  return tensor({2, 3}, {1, 5, 3, 4, 2, 6});
}

}  // namespace

TEST_CASE("argmax along each axis of a matrix", "[ops][reduction][argmax]") {
  const Indices rows = grokalign::argmax(unsorted_2x3(), -1);
  CHECK(rows.shape == Shape{2});
  CHECK(values_of(rows) == std::vector<index_t>{1, 2});
  const Indices cols = grokalign::argmax(unsorted_2x3(), 0);
  CHECK(cols.shape == Shape{3});
  CHECK(values_of(cols) == std::vector<index_t>{1, 0, 1});
  CHECK(grokalign::argmax(unsorted_2x3(), 1, /*keepdim=*/true).shape == Shape{2, 1});
}

TEST_CASE("argmax of a rank-3 tensor along the middle axis", "[ops][reduction][argmax]") {
  Generator gen(4301);
  const Tensor x = normal({2, 4, 3}, gen);
  const Indices idx = grokalign::argmax(x, 1);
  REQUIRE(idx.shape == Shape{2, 3});
  for (index_t a = 0; a < 2; ++a)
    for (index_t c = 0; c < 3; ++c) {
      index_t best = 0;
      for (index_t k = 1; k < 4; ++k)
        if (x.at(a, k, c) > x.at(a, best, c)) best = k;
      CHECK(idx[a * 3 + c] == best);
    }
}

TEST_CASE("argmax takes the first of tied maxima, and NaN as the maximum",
          "[ops][reduction][argmax]") {
  CHECK(values_of(grokalign::argmax(tensor({4}, {2, 7, 7, 1}), 0)) == std::vector<index_t>{1});
  const double nan = std::nan("");
  CHECK(values_of(grokalign::argmax(tensor({4}, {2, nan, 9, nan}), 0)) == std::vector<index_t>{1});
  CHECK(grokalign::argmax(tensor({4}, {2, 7, 7, 1}), 0).shape == Shape{});
}

TEST_CASE("argmax looks at the value of a Var", "[ops][reduction][argmax]") {
  const Var v(unsorted_2x3(), true);
  CHECK(values_of(grokalign::argmax(v, -1)) == std::vector<index_t>{1, 2});
}

TEST_CASE("argmax and max refuse an empty axis and a bad axis",
          "[ops][reduction][argmax][errors]") {
  const Tensor empty = Tensor::zeros({2, 0});
  CHECK_THROWS_WITH(grokalign::argmax(empty, 1),
                    Catch::Contains("argmax") && Catch::Contains("empty"));
  CHECK_THROWS_WITH(grokalign::max(empty, 1), Catch::Contains("max"));
  CHECK_THROWS_AS(grokalign::argmax(unsorted_2x3(), 2), grokalign::ShapeError);
}

TEST_CASE("max along an axis: values and shapes", OP_TAGS("[reduction][max]")) {
  const auto rows = [](const auto& x) { return grokalign::max(x[0], -1); };
  const auto cols_keep = [](const auto& x) { return grokalign::max(x[0], 0, true); };
  require_value(rows, {unsorted_2x3()}, tensor({2}, {5, 6}));
  require_value(cols_keep, {unsorted_2x3()}, tensor({1, 3}, {4, 5, 6}));
  require_value([](const auto& x) { return grokalign::max(x[0], 0); }, {tensor({3}, {1, 9, 2})},
                Tensor::scalar(9));
}

TEST_CASE("max along an axis: derivatives of every order", OP_TAGS("[reduction][max]")) {
  Generator gen(4302);
  // Normal entries are distinct with probability one and, at this size, far apart compared
  // with the finite-difference step, so the maximum does not switch under it.
  const Tensor x = normal({3, 4, 2}, gen);
  for (int axis : {0, 1, 2}) {
    INFO("axis " << axis);
    require_gradcheck([axis](const auto& in) { return grokalign::max(in[0], axis); }, {x});
    require_gradcheck(
        [axis](const auto& in) {
          const auto m = grokalign::max(in[0], axis, true);
          return m * m;
        },
        {x});
  }
}

TEST_CASE("max's gradient reaches the first of tied maxima only", "[ops][reduction][max]") {
  const Var x(tensor({2, 3}, {1, 7, 7, 4, 2, 4}), true);
  sum(grokalign::max(x, -1)).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{0, 1, 0, 1, 0, 0});
}
