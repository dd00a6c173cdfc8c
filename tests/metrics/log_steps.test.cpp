// log_spaced_steps against numpy's logspace(0, log10(steps), n).astype(int), worked by hand:
// entry i is steps^(i / (n - 1)) truncated.
#include <catch2/catch.hpp>

#include <algorithm>
#include <grokalign/metrics.hpp>

#include "expect_error.hpp"

namespace ga = grokalign;
using metrics_test::expect_error;

TEST_CASE("log_spaced_steps: 100 steps, 10 points", "[metrics]") {
  // 100^(i/9) = 1, 1.67, 2.78, 4.64, 7.74, 12.9, 21.5, 35.9, 59.9, 100.
  const std::vector<ga::index_t> expected = {0, 1, 2, 4, 7, 12, 21, 35, 59, 100};
  CHECK(ga::metrics::log_spaced_steps(100, 10) == expected);
}

TEST_CASE("log_spaced_steps: 4000 steps, 64 points", "[metrics]") {
  const auto s = ga::metrics::log_spaced_steps(4000, 64);
  // 4000^(i/63): below 10 every integer 1..10 appears (consecutive ratios 1.14), then
  // duplicates start to vanish; 56 distinct values with 0.
  REQUIRE(s.size() == 56);
  CHECK(std::is_sorted(s.begin(), s.end()));
  CHECK(std::adjacent_find(s.begin(), s.end()) == s.end());
  for (ga::index_t i = 0; i <= 10; ++i) CHECK(s[i] == i);
  CHECK(s[11] == 12);  // 4000^(19/63) = 12.2 (i = 18 gives 10.6, so 11 is skipped)
  CHECK(s[12] == 13);
  CHECK(std::count(s.begin(), s.end(), 67) == 1);    // 4000^(32/63) = 67.5
  CHECK(std::count(s.begin(), s.end(), 3506) == 1);  // 4000^(62/63) = 4000 / 1.1408 = 3506.4
  CHECK(std::count(s.begin(), s.end(), 11) == 0);
  CHECK(s[s.size() - 2] == 3506);
  CHECK(s.back() == 4000);
}

TEST_CASE("log_spaced_steps: edge cases", "[metrics]") {
  CHECK(ga::metrics::log_spaced_steps(1, 5) == std::vector<ga::index_t>{0, 1});
  CHECK(ga::metrics::log_spaced_steps(50, 0) == std::vector<ga::index_t>{0, 50});
  CHECK(ga::metrics::log_spaced_steps(50, 1) == std::vector<ga::index_t>{0, 1, 50});
  // numpy's quirk, kept: 10 ** log10(50) is 49.99999999999999, which truncates to 49.
  CHECK(ga::metrics::log_spaced_steps(50, 2) == std::vector<ga::index_t>{0, 1, 49, 50});
  CHECK(ga::metrics::log_spaced_steps(1000, 4) == std::vector<ga::index_t>{0, 1, 10, 100, 1000});
}

TEST_CASE("log_spaced_steps: bad arguments", "[metrics][errors]") {
  expect_error([] { ga::metrics::log_spaced_steps(0, 10); }, "steps must be at least 1, got 0");
  expect_error([] { ga::metrics::log_spaced_steps(-5, 10); }, "steps");
  expect_error([] { ga::metrics::log_spaced_steps(100, -1); }, "n must be >= 0");
}
