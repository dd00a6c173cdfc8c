// ga::metrics::add_noise draws what the noisy accuracy metrics draw (row by row, only the chosen
// coordinates), so a caller evaluating a block of the rows itself can take the whole set's
// draws; bad options are refused by name.
#include <catch2/catch.hpp>
#include <grokalign/grokalign.hpp>
#include <grokalign/metrics.hpp>

namespace {
namespace ga = grokalign;
}  // namespace

TEST_CASE("add_noise noises the chosen coordinates row by row and checks its options",
          "[metrics]") {
  ga::Generator data(1);
  const ga::Tensor<double> x = ga::randn<double>({5, 4}, data);
  ga::Tensor<double> a = x.clone(), b = x.clone();
  ga::Generator g1(7), g2(7);
  ga::metrics::add_noise(a, {.sigma = 0.5, .begin = 1, .end = 3}, g1);
  // The same draws, in the same order, from a generator seeded alike.
  for (ga::index_t i = 0; i < 5; ++i)
    for (ga::index_t j = 1; j < 3; ++j) b.data()[i * 4 + j] += 0.5 * g2.normal();
  CHECK((a.array() == b.array()).all());
  for (ga::index_t i = 0; i < 5; ++i) {  // the other coordinates untouched
    CHECK(a.data()[i * 4 + 0] == x.data()[i * 4 + 0]);
    CHECK(a.data()[i * 4 + 3] == x.data()[i * 4 + 3]);
  }
  ga::Generator g3(7);
  CHECK_THROWS_WITH(ga::metrics::add_noise(a, {.sigma = -1.0}, g3),
                    Catch::Contains("add_noise") && Catch::Contains("sigma"));
}
