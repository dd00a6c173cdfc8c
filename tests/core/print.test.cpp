// Printing tensors: NumPy's layout (nested brackets, aligned columns, %g), the summary of
// large tensors, ranks 0 to 3, options, and undefined tensors.
#include <catch2/catch.hpp>

#include <grokalign/grokalign.hpp>
#include <sstream>

namespace ga = grokalign;

TEST_CASE("a matrix prints one row per line with aligned columns", "[core][print]") {
  const auto t = ga::Tensor<double>::from({2, 3}, {1, -2.5, 3, 40, 5, 6});
  CHECK(ga::to_string(t) == "[[   1, -2.5,    3],\n [  40,    5,    6]]");
  std::ostringstream os;
  os << t;
  CHECK(os.str() == ga::to_string(t));
}

TEST_CASE("scalars, vectors and rank-3 tensors", "[core][print]") {
  CHECK(ga::to_string(ga::Tensor<float>::scalar(0.5f)) == "0.5");
  CHECK(ga::to_string(ga::Tensor<double>::from({3}, {1, 2, 3})) == "[1, 2, 3]");
  CHECK(ga::to_string(ga::Tensor<double>::from({2, 1, 2}, {1, 2, 3, 4})) ==
        "[[[1, 2]],\n\n [[3, 4]]]");
  CHECK(ga::to_string(ga::Tensor<double>::zeros({0})) == "[]");
}

TEST_CASE("precision and the summary of large tensors", "[core][print]") {
  const auto third = ga::Tensor<double>::from({1}, {1.0 / 3});
  CHECK(ga::to_string(third) == "[0.333333]");
  CHECK(ga::to_string(third, {.precision = 3}) == "[0.333]");
  std::vector<double> v(2000);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i);
  CHECK(ga::to_string(ga::Tensor<double>::from({2000}, v)) ==
        "[   0,    1,    2, ..., 1997, 1998, 1999]");
  const auto m = ga::Tensor<double>::from({2, 1000}, v);
  CHECK(ga::to_string(m) ==
        "[[   0,    1,    2, ...,  997,  998,  999],\n [1000, 1001, 1002, ..., 1997, 1998, 1999]]");
  // Below the threshold nothing is elided.
  CHECK(ga::to_string(ga::Tensor<double>::from({8}, {0, 1, 2, 3, 4, 5, 6, 7})) ==
        "[0, 1, 2, 3, 4, 5, 6, 7]");
}

TEST_CASE("an undefined tensor prints as (undefined)", "[core][print]") {
  CHECK(ga::to_string(ga::Tensor<double>()) == "(undefined)");
}
