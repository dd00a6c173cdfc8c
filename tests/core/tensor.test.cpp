// Tensor, Shape, broadcasting, the random Generator and the block cache.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <grokalign/grokalign.hpp>
#include <vector>

using namespace grokalign;

namespace {
using Td = Tensor<double>;
}  // namespace

TEST_CASE("Tensor factories fill and check their sizes", "[tensor]") {
  const Td z = Td::zeros(Shape{2, 3});
  REQUIRE(z.defined());
  REQUIRE(z.shape() == Shape{2, 3});
  for (double v : z) CHECK(v == 0.0);

  const Td f = Td::full(Shape{4}, 2.5);
  for (double v : f) CHECK(v == 2.5);
  for (double v : Td::ones(Shape{3, 1})) CHECK(v == 1.0);

  const Td s = Td::scalar(7.0);
  CHECK(s.rank() == 0);
  CHECK(s.numel() == 1);
  CHECK(s.item() == 7.0);

  const Td a = Td::from(Shape{2, 2}, {1.0, 2.0, 3.0, 4.0});
  CHECK(a.to_vector() == std::vector<double>{1, 2, 3, 4});
  const Td b = Td::from(Shape{3}, std::vector<double>{5, 6, 7});
  CHECK(b.to_vector() == std::vector<double>{5, 6, 7});

  CHECK_THROWS_AS(Td::from(Shape{2, 2}, {1.0, 2.0, 3.0}), ShapeError);
  CHECK_THROWS_AS(Td::from(Shape{3}, std::vector<double>{1, 2, 3, 4}), ShapeError);
  CHECK_THROWS_WITH(Td::from(Shape{2, 2}, {1.0, 2.0, 3.0}),
                    Catch::Contains("Tensor::from") && Catch::Contains("[2, 2]"));

  // Empty tensors are legal and have no elements.
  const Td e = Td::zeros(Shape{0, 3});
  CHECK(e.numel() == 0);
  CHECK(e.begin() == e.end());

  // A default tensor is undefined (a symbolic zero for autodiff).
  CHECK_FALSE(Td().defined());
}

TEST_CASE("Shape: rank, numel, dim and to_string for ranks 0..4", "[tensor]") {
  const Shape shapes[] = {Shape{}, Shape{5}, Shape{2, 3}, Shape{2, 3, 4}, Shape{2, 1, 3, 2}};
  const index_t numels[] = {1, 5, 6, 24, 12};
  for (int r = 0; r <= 4; ++r) {
    const Shape& s = shapes[r];
    CHECK(s.rank() == r);
    CHECK(s.numel() == numels[r]);
    const Td t = Td::zeros(s);
    CHECK(t.rank() == r);
    CHECK(t.numel() == numels[r]);
    CHECK(t.shape() == s);
  }
  const Shape s{2, 3, 4};
  CHECK(s.dim(-1) == 4);
  CHECK(s.dim(0) == 2);
  CHECK_THROWS_AS(s.dim(3), ShapeError);
  CHECK_THROWS_AS(s.dim(-4), ShapeError);
  CHECK(s.to_string() == "[2, 3, 4]");
  CHECK(Shape{}.to_string() == "[]");
  CHECK(s.prod(1, 3) == 12);
  CHECK_FALSE(Shape{2, 3} == Shape{3, 2});
  CHECK_FALSE(Shape{6} == Shape{6, 1});
  CHECK_THROWS_AS(Shape({1, 1, 1, 1, 1, 1, 1}), ShapeError);
  CHECK_THROWS_AS(Shape({2, -1}), ShapeError);
}

TEST_CASE("reshape is a view sharing storage", "[tensor]") {
  Td a = Td::from(Shape{2, 3}, {0, 1, 2, 3, 4, 5});
  Td b = a.reshape(Shape{3, 2});
  CHECK(b.shape() == Shape{3, 2});
  CHECK(b.shares_storage_with(a));
  CHECK(b.data() == a.data());
  b.at(2, 1) = 42.0;
  CHECK(a.at(1, 2) == 42.0);
  a.at(0, 0) = -1.0;
  CHECK(b.at(0, 0) == -1.0);
  CHECK_THROWS_AS(a.reshape(Shape{4, 2}), ShapeError);
  CHECK_THROWS_WITH(a.reshape(Shape{4, 2}), Catch::Contains("reshape") &&
                                                Catch::Contains("[2, 3]") &&
                                                Catch::Contains("[4, 2]"));
  // Copies share data too.
  Td c = a;
  c.at(0, 1) = 9.0;
  CHECK(a.at(0, 1) == 9.0);
}

TEST_CASE("rows() is a view of a range along the first axis", "[tensor]") {
  Td a = Td::from(Shape{4, 2}, {0, 1, 2, 3, 4, 5, 6, 7});
  Td r = a.rows(1, 2);
  CHECK(r.shape() == Shape{2, 2});
  CHECK(r.shares_storage_with(a));
  CHECK(r.to_vector() == std::vector<double>{2, 3, 4, 5});
  r.at(1, 0) = 100.0;
  CHECK(a.at(2, 0) == 100.0);
  a.at(1, 1) = -3.0;
  CHECK(r.at(0, 1) == -3.0);
  CHECK(a.rows(4, 0).numel() == 0);
  CHECK_THROWS_AS(a.rows(3, 2), ShapeError);
  CHECK_THROWS_AS(a.rows(-1, 1), ShapeError);
  CHECK_THROWS_AS(Td::scalar(1.0).rows(0, 1), ShapeError);
}

TEST_CASE("clone is independent of the original", "[tensor]") {
  Td a = Td::from(Shape{2, 2}, {1, 2, 3, 4});
  Td c = a.clone();
  CHECK_FALSE(c.shares_storage_with(a));
  CHECK(c.to_vector() == a.to_vector());
  c.at(0, 0) = 10.0;
  CHECK(a.at(0, 0) == 1.0);
  a.at(1, 1) = 20.0;
  CHECK(c.at(1, 1) == 4.0);

  // copy_from writes in place; fill too.
  Td d = Td::zeros(Shape{4});
  d.copy_from(a);
  CHECK(d.to_vector() == std::vector<double>{1, 2, 3, 20});
  CHECK_THROWS_AS(d.copy_from(Td::zeros(Shape{3})), ShapeError);
  d.fill(0.5);
  for (double v : d) CHECK(v == 0.5);
}

TEST_CASE("matrix() collapses the leading axes into rows", "[tensor]") {
  Td a = Td::zeros(Shape{2, 3, 4});
  for (index_t i = 0; i < a.numel(); ++i) a.data()[i] = static_cast<double>(i);
  auto m = a.matrix();
  CHECK(m.rows() == 6);
  CHECK(m.cols() == 4);
  CHECK(m(1, 2) == 6.0);  // row-major
  CHECK(m(5, 3) == a.at(1, 2, 3));
  m(2, 1) = -5.0;
  CHECK(a.at(0, 2, 1) == -5.0);

  const Td v = Td::zeros(Shape{5});
  CHECK(v.matrix().rows() == 1);
  CHECK(v.matrix().cols() == 5);
  const Td s = Td::scalar(3.0);
  CHECK(s.matrix().rows() == 1);
  CHECK(s.matrix().cols() == 1);
  CHECK(s.matrix()(0, 0) == 3.0);

  Eigen::MatrixXd e(2, 3);  // column-major source
  e << 1, 2, 3, 4, 5, 6;
  const Td fm = Td::from_matrix(e);
  CHECK(fm.shape() == Shape{2, 3});
  CHECK(fm.to_vector() == std::vector<double>{1, 2, 3, 4, 5, 6});
  CHECK(a.array().size() == 24);
}

TEST_CASE("at() indexes row-major and checks its indices", "[tensor]") {
  Td a = Td::zeros(Shape{2, 3, 4});
  for (index_t i = 0; i < a.numel(); ++i) a.data()[i] = static_cast<double>(i);
  CHECK(a.at(0, 0, 0) == 0.0);
  CHECK(a.at(1, 0, 0) == 12.0);
  CHECK(a.at(0, 2, 0) == 8.0);
  CHECK(a.at(1, 2, 3) == 23.0);
  const Td& ca = a;
  CHECK(ca.at(1, 1, 1) == 17.0);

  CHECK_THROWS_AS(a.at(2, 0, 0), ShapeError);
  CHECK_THROWS_AS(a.at(0, 3, 0), ShapeError);
  CHECK_THROWS_AS(a.at(0, 0, -1), ShapeError);
  CHECK_THROWS_AS(a.at(0, 0), ShapeError);  // wrong number of indices
  CHECK_THROWS_WITH(a.at(0, 0, 4), Catch::Contains("at") && Catch::Contains("[2, 3, 4]"));
  CHECK(Td::scalar(4.0).at() == 4.0);
  CHECK_THROWS_AS(Td::zeros(Shape{2}).item(), ShapeError);
}

TEST_CASE("broadcast_shapes follows NumPy rules", "[tensor]") {
  CHECK(broadcast_shapes(Shape{2, 3}, Shape{2, 3}, "t") == Shape{2, 3});
  CHECK(broadcast_shapes(Shape{2, 3}, Shape{3}, "t") == Shape{2, 3});
  CHECK(broadcast_shapes(Shape{3}, Shape{2, 3}, "t") == Shape{2, 3});
  CHECK(broadcast_shapes(Shape{2, 1}, Shape{1, 4}, "t") == Shape{2, 4});
  CHECK(broadcast_shapes(Shape{}, Shape{2, 3}, "t") == Shape{2, 3});
  CHECK(broadcast_shapes(Shape{5, 1, 3}, Shape{4, 1}, "t") == Shape{5, 4, 3});
  CHECK(broadcast_shapes(Shape{2, 0}, Shape{1}, "t") == Shape{2, 0});
  CHECK_THROWS_AS(broadcast_shapes(Shape{2, 3}, Shape{4}, "myop"), ShapeError);
  CHECK_THROWS_WITH(
      broadcast_shapes(Shape{2, 3}, Shape{3, 2}, "myop"),
      Catch::Contains("myop") && Catch::Contains("[2, 3]") && Catch::Contains("[3, 2]"));
  try {
    broadcast_shapes(Shape{2, 3}, Shape{4}, "myop");
    FAIL("no exception");
  } catch (const ShapeError& e) {
    CHECK(e.op() == "myop");
  }
  CHECK(broadcastable_to(Shape{3}, Shape{2, 3}));
  CHECK(broadcastable_to(Shape{1, 3}, Shape{2, 3}));
  CHECK_FALSE(broadcastable_to(Shape{2, 3}, Shape{3}));
  CHECK_FALSE(broadcastable_to(Shape{2}, Shape{2, 3}));
}

TEST_CASE("Generator streams are reproducible and seed-dependent", "[tensor]") {
  Generator a(42), b(42), c(43);
  bool all_same = true;
  bool any_diff_c = false;
  for (int i = 0; i < 100; ++i) {
    const std::uint64_t x = a.next_u64();
    all_same = all_same && x == b.next_u64();
    any_diff_c = any_diff_c || x != c.next_u64();
  }
  CHECK(all_same);
  CHECK(any_diff_c);

  // Reseeding restarts the stream, including the Box-Muller spare.
  Generator g(7);
  const double n0 = g.normal(), n1 = g.normal();
  g.normal();  // leaves a spare pending
  g.reseed(7);
  CHECK(g.normal() == n0);
  CHECK(g.normal() == n1);

  // Different seeds give different normal streams too.
  Generator d1(1), d2(2);
  int differ = 0;
  for (int i = 0; i < 10; ++i) differ += d1.normal() != d2.normal();
  CHECK(differ == 10);
}

TEST_CASE("Generator distributions have the right moments", "[tensor]") {
  constexpr int n = 20000;
  Generator gen(2024);
  // Uniform: in [0, 1), mean 1/2 (sd 1/sqrt(12 n)), variance 1/12.
  double su = 0, su2 = 0, umin = 1, umax = 0;
  for (int i = 0; i < n; ++i) {
    const double u = gen.uniform();
    su += u;
    su2 += u * u;
    umin = std::min(umin, u);
    umax = std::max(umax, u);
  }
  CHECK(umin >= 0.0);
  CHECK(umax < 1.0);
  const double umean = su / n;
  CHECK(std::abs(umean - 0.5) < 5.0 * std::sqrt(1.0 / 12.0 / n));
  const double uvar = su2 / n - umean * umean;
  // Var of the sample variance of U(0,1) is (1/80 - 1/144) / n.
  CHECK(std::abs(uvar - 1.0 / 12.0) < 5.0 * std::sqrt((1.0 / 80 - 1.0 / 144) / n));

  for (int i = 0; i < 1000; ++i) {
    const double u = gen.uniform(-2.0, 3.0);
    CHECK((u >= -2.0 && u < 3.0));
  }

  // Standard normal: the sample mean has sd 1/sqrt(n); the sample variance has sd
  // sqrt(2/n) (fourth moment 3). Five standard errors: a false failure is ~1e-6 likely.
  double s = 0, s2 = 0;
  for (int i = 0; i < n; ++i) {
    const double z = gen.normal();
    s += z;
    s2 += z * z;
  }
  const double mean = s / n;
  const double var = s2 / n - mean * mean;
  CHECK(std::abs(mean) < 5.0 / std::sqrt(double(n)));
  CHECK(std::abs(var - 1.0) < 5.0 * std::sqrt(2.0 / n));

  // normal(mean, sd) is an affine map of the same stream.
  Generator g1(9), g2(9);
  for (int i = 0; i < 10; ++i) CHECK(g1.normal(3.0, 2.0) == Approx(3.0 + 2.0 * g2.normal()));

  // Bernoulli(p): rate within 5 sd of p, sd = sqrt(p (1 - p) / n).
  const double p = 0.3;
  int hits = 0;
  for (int i = 0; i < n; ++i) hits += gen.bernoulli(p);
  CHECK(std::abs(double(hits) / n - p) < 5.0 * std::sqrt(p * (1 - p) / n));

  for (int i = 0; i < 1000; ++i) CHECK(gen.below(7) < 7);
  CHECK(gen.below(0) == 0);
}

TEST_CASE("randn, rand_uniform and rand_bernoulli fill from the generator", "[tensor]") {
  Generator g1(5), g2(5);
  const Td r = randn<double>(Shape{3, 4}, g1);
  CHECK(r.shape() == Shape{3, 4});
  for (double v : r) CHECK(v == g2.normal());

  Generator g3(6), g4(6);
  const Td u = rand_uniform<double>(Shape{50}, g3, -1.0, 2.0);
  for (double v : u) {
    CHECK((v >= -1.0 && v < 2.0));
    CHECK(v == g4.uniform(-1.0, 2.0));
  }

  Generator g5(8);
  const Tensor<float> b = rand_bernoulli<float>(Shape{1000}, g5, 0.5);
  int ones = 0;
  for (float v : b) {
    CHECK((v == 0.0f || v == 1.0f));
    ones += v == 1.0f;
  }
  CHECK(ones > 400);
  CHECK(ones < 600);

  Generator g6(5);
  const Td r2 = randn<double>(Shape{3, 4}, g6);
  CHECK(r2.to_vector() == r.to_vector());
  const Td shifted = randn<double>(Shape{2000}, g6, 10.0, 0.5);
  double m = 0;
  for (double v : shifted) m += v;
  CHECK(std::abs(m / 2000 - 10.0) < 5 * 0.5 / std::sqrt(2000.0));
}

TEST_CASE("BlockCache reuses a freed block of the same size class", "[tensor]") {
  using detail::BlockCache;
  BlockCache cache;
  void* p = cache.allocate(100);
  REQUIRE(p != nullptr);
  CHECK(reinterpret_cast<std::uintptr_t>(p) % detail::kAlignment == 0);
  cache.deallocate(p, 100);
  void* q = cache.allocate(100);
  CHECK(q == p);
  // 120 bytes is in the same class (128) as 100.
  REQUIRE(BlockCache::size_class(100) == BlockCache::size_class(120));
  cache.deallocate(q, 100);
  void* r = cache.allocate(120);
  CHECK(r == p);
  // A different class does not get the block.
  REQUIRE(BlockCache::size_class(1000) != BlockCache::size_class(100));
  cache.deallocate(r, 120);
  void* s = cache.allocate(1000);
  CHECK(s != p);
  cache.deallocate(s, 1000);

  // Class sizes go in steps of x and 1.5x, each a multiple of the alignment (as aligned_alloc
  // requires), and every request fits its class.
  for (int c = 0; c + 2 < BlockCache::kClasses; ++c) {
    CHECK(BlockCache::class_bytes(c) % detail::kAlignment == 0);
    CHECK(BlockCache::class_bytes(c + 2) == 2 * BlockCache::class_bytes(c));
    CHECK(BlockCache::class_bytes(c) < BlockCache::class_bytes(c + 1));
  }
  CHECK(2 * BlockCache::class_bytes(1) == 3 * BlockCache::class_bytes(0));
  for (std::size_t bytes : {1u, 64u, 65u, 97u, 1000u, 4096u, 100000u}) {
    const int c = BlockCache::size_class(bytes);
    CHECK(BlockCache::class_bytes(c) >= bytes);
    if (c > 0) CHECK(BlockCache::class_bytes(c - 1) < bytes);  // the smallest class that fits
  }

  cache.release_all();
  void* t = cache.allocate(100);
  cache.deallocate(t, 100);

  // The thread's cache serves tensors: freeing a buffer and allocating the same size again
  // gets the same memory back.
  const double* first = nullptr;
  {
    Td a = Td::zeros(Shape{1000});
    first = a.data();
  }
  Td b = Td::zeros(Shape{1000});
  CHECK(b.data() == first);
}
