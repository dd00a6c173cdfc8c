// The generated data sets: XOR's values and label balance, modular addition's counts, labels
// and split, and both being fixed by the seed.
#include <catch2/catch.hpp>
#include <cmath>
#include <grokalign/data/synthetic.hpp>
#include <set>
#include <vector>

using namespace grokalign;
using Catch::Matchers::Contains;

TEST_CASE("XOR points are +-1 signals and +-eps noise with y = x1 * x2", "[data]") {
  Generator gen(7);
  const index_t n = 2000, p = 12;
  const auto d = make_xor<double>(n, p, 0.05, gen);
  REQUIRE(d.x.shape() == Shape{n, p});
  REQUIRE(d.y.shape() == Shape{n, 1});
  index_t positive = 0, first_positive = 0, noise_positive = 0;
  for (index_t i = 0; i < n; ++i) {
    CHECK(std::abs(d.x.at(i, 0)) == 1.0);
    CHECK(std::abs(d.x.at(i, 1)) == 1.0);
    for (index_t j = 2; j < p; ++j) {
      REQUIRE(std::abs(d.x.at(i, j)) == 0.05);
      noise_positive += d.x.at(i, j) > 0;
    }
    REQUIRE(d.y.at(i, 0) == d.x.at(i, 0) * d.x.at(i, 1));
    positive += d.y.at(i, 0) > 0;
    first_positive += d.x.at(i, 0) > 0;
  }
  // Fair coins: 5 standard deviations (sqrt(n)/2 = 22 for n = 2000) leave no flaky runs.
  CHECK(std::abs(positive - n / 2) < 5 * 23);
  CHECK(std::abs(first_positive - n / 2) < 5 * 23);
  CHECK(std::abs(noise_positive - n * (p - 2) / 2) < 5 * 71);
  // All four sign quadrants occur.
  std::set<std::pair<double, double>> quadrants;
  for (index_t i = 0; i < n; ++i) quadrants.insert({d.x.at(i, 0), d.x.at(i, 1)});
  CHECK(quadrants.size() == 4);

  Generator a(3), b(3), c(4);
  const auto da = make_xor<float>(50, 5, 0.1, a), db = make_xor<float>(50, 5, 0.1, b),
             dc = make_xor<float>(50, 5, 0.1, c);
  CHECK(da.x.to_vector() == db.x.to_vector());
  CHECK(da.x.to_vector() != dc.x.to_vector());
  CHECK(std::abs(da.x.at(0, 4)) == 0.1f);

  REQUIRE_THROWS_WITH(make_xor<double>(10, 1, 0.1, gen), Contains("p = 1"));
  REQUIRE_THROWS_WITH(make_xor<double>(10, 4, -0.1, gen), Contains("epsilon"));
}

TEST_CASE("Modular addition holds every pair once, labelled (a + b) mod p", "[data]") {
  Generator gen(0);
  const index_t p = 13;
  const auto m = make_modular_addition(p, 0.3, gen);
  CHECK(m.vocab() == 14);
  CHECK(m.train_size() == 51);  // round(0.3 * 169) = round(50.7)
  CHECK(m.test_size() == 118);
  REQUIRE(m.train_tokens.size() == 3 * 51);
  REQUIRE(m.test_tokens.size() == 3 * 118);
  std::set<std::pair<index_t, index_t>> pairs;
  auto check = [&](const std::vector<index_t>& tokens, const std::vector<index_t>& labels) {
    for (std::size_t i = 0; i < labels.size(); ++i) {
      const index_t a = tokens[3 * i], b = tokens[3 * i + 1];
      REQUIRE(a >= 0);
      REQUIRE(a < p);
      REQUIRE(b >= 0);
      REQUIRE(b < p);
      REQUIRE(tokens[3 * i + 2] == p);  // the "=" token
      REQUIRE(labels[i] == (a + b) % p);
      pairs.insert({a, b});
    }
  };
  check(m.train_tokens, m.train_labels);
  check(m.test_tokens, m.test_labels);
  CHECK(pairs.size() == static_cast<std::size_t>(p * p));
  // Shuffled: the training pairs are not the first 51 in a-major order.
  CHECK(!(m.train_tokens[0] == 0 && m.train_tokens[1] == 0 && m.train_tokens[3] == 0 &&
          m.train_tokens[4] == 1));

  Generator a(5), b(5), c(6);
  CHECK(make_modular_addition(p, 0.3, a).train_tokens ==
        make_modular_addition(p, 0.3, b).train_tokens);
  CHECK(make_modular_addition(p, 0.3, c).train_tokens != m.train_tokens);
  CHECK(make_modular_addition(113, 0.3, a).train_size() == 3831);  // round(0.3 * 12769)
  CHECK(make_modular_addition(p, 1.0, a).test_size() == 0);
  REQUIRE_THROWS_WITH(make_modular_addition(p, 1.5, a), Contains("train_fraction"));
  REQUIRE_THROWS_WITH(make_modular_addition(1, 0.5, a), Contains("p = 1"));
}
