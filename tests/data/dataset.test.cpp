// Cutting and scaling labelled images: first n, balanced class subsets, the reference's
// normalisations and flattening; and the CIFAR-10 binary reader on files the test writes.
#include <catch2/catch.hpp>
#include <cstdint>
#include <grokalign/data/cifar10.hpp>
#include <grokalign/data/dataset.hpp>
#include <string>
#include <vector>

#include "../io/temp_dir.hpp"

using namespace grokalign;
using Catch::Matchers::Contains;
using grokalign_test::TempDir;
using grokalign_test::write_file;

namespace {

// Sample i is an image [1, 2, 2] filled with i; labels as given.
LabelledImages<double> toy(const std::vector<index_t>& labels, index_t classes) {
  LabelledImages<double> ds;
  const index_t n = static_cast<index_t>(labels.size());
  ds.images = Tensor<double>::empty(Shape{n, 1, 2, 2});
  for (index_t i = 0; i < n; ++i)
    for (int j = 0; j < 4; ++j) ds.images.data()[i * 4 + j] = double(i);
  ds.labels = labels;
  ds.classes = classes;
  ds.name = "toy";
  return ds;
}

// A CIFAR-10 batch of `n` records: label i % 10, pixel j of record i = (i + j) % 256.
std::string cifar_records(int n, int label_offset = 0) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    s.push_back(static_cast<char>((i + label_offset) % 10));
    for (int j = 0; j < 3072; ++j) s.push_back(static_cast<char>((i + j) % 256));
  }
  return s;
}

}  // namespace

TEST_CASE("first and balanced_subset keep file order and remap labels", "[data]") {
  const auto ds = toy({3, 1, 3, 0, 1, 1, 3, 0, 2}, 4);
  const auto f = first(ds, 4);
  CHECK(f.size() == 4);
  CHECK(f.images.shape() == Shape{4, 1, 2, 2});
  CHECK(f.images.shares_storage_with(ds.images));
  CHECK(f.labels == std::vector<index_t>{3, 1, 3, 0});
  REQUIRE_THROWS_WITH(first(ds, 10), Contains("first 10") && Contains("toy"));

  // Classes 1 and 3, two of each: samples 0 (3), 1 (1), 2 (3), 4 (1) in file order.
  const auto b = balanced_subset(ds, {1, 3}, 2);
  CHECK(b.classes == 2);
  CHECK(b.labels == std::vector<index_t>{1, 0, 1, 0});
  CHECK(b.images.shape() == Shape{4, 1, 2, 2});
  CHECK(b.images.at(0, 0, 0, 0) == 0.0);
  CHECK(b.images.at(1, 0, 1, 1) == 1.0);
  CHECK(b.images.at(2, 0, 0, 1) == 2.0);
  CHECK(b.images.at(3, 0, 0, 0) == 4.0);
  CHECK(balanced_subset(ds, {3, 1}, 1).labels == std::vector<index_t>{0, 1});

  REQUIRE_THROWS_WITH(balanced_subset(ds, {0, 2}, 2),
                      Contains("only 1 samples of class 2") && Contains("2 requested"));
  REQUIRE_THROWS_WITH(balanced_subset(ds, {1, 1}, 1), Contains("listed twice"));
  REQUIRE_THROWS_WITH(balanced_subset(ds, {4}, 1), Contains("class 4"));
}

TEST_CASE("normalisations and flattening follow the reference", "[data]") {
  auto x = Tensor<double>::from({1, 3, 1, 2}, {0.0, 1.0, 0.5, 0.5, 1.0, 0.0});
  const auto m = normalize_mnist(x);
  CHECK(m.at(0, 0, 0, 0) == Approx(-0.1307 / 0.3081));
  CHECK(m.at(0, 0, 0, 1) == Approx((1 - 0.1307) / 0.3081));
  CHECK(x.at(0, 0, 0, 0) == 0.0);  // a new tensor
  const auto c = normalize_cifar10(x);
  CHECK(c.at(0, 0, 0, 1) == Approx((1 - 0.4914) / 0.2471));
  CHECK(c.at(0, 1, 0, 0) == Approx((0.5 - 0.4822) / 0.2435));
  CHECK(c.at(0, 2, 0, 1) == Approx((0.0 - 0.4465) / 0.2616));
  REQUIRE_THROWS_AS(normalize_cifar10(Tensor<double>::zeros({2, 1, 2, 2})), ShapeError);
  const auto flat = flatten_images(x);
  CHECK(flat.shape() == Shape{1, 6});
  CHECK(flat.shares_storage_with(x));
}

TEST_CASE("CIFAR-10 binary batches read back", "[data]") {
  TempDir dir;
  write_file(dir / "a.bin", cifar_records(3));
  write_file(dir / "b.bin", cifar_records(2, 5));
  const auto ds = read_cifar10<float>({dir / "a.bin", dir / "b.bin"});
  REQUIRE(ds.images.shape() == Shape{5, 3, 32, 32});
  CHECK(ds.labels == std::vector<index_t>{0, 1, 2, 5, 6});
  CHECK(ds.classes == 10);
  // Channel-major: record 1, channel 2 (blue), row 3, column 4 is pixel byte 2048 + 100.
  CHECK(ds.images.at(1, 2, 3, 4) == Approx(((1 + 2048 + 3 * 32 + 4) % 256) / 255.0f));
  CHECK(ds.images.at(4, 0, 0, 0) == Approx(1 / 255.0f));
  const auto two = read_cifar10<double>({dir / "a.bin", dir / "b.bin"}, 2);
  CHECK(two.labels == std::vector<index_t>{0, 1});
  CHECK(two.images.shape() == Shape{2, 3, 32, 32});
}

TEST_CASE("Bad CIFAR-10 files are refused naming the file", "[data][errors]") {
  TempDir dir;
  write_file(dir / "short.bin", cifar_records(2).substr(0, 6000));
  REQUIRE_THROWS_WITH(read_cifar10<double>({dir / "short.bin"}),
                      Contains("short.bin") && Contains("size 6000") && Contains("3073"));
  auto bad = cifar_records(2);
  bad[3073] = 10;
  write_file(dir / "label.bin", bad);
  REQUIRE_THROWS_WITH(read_cifar10<double>({dir / "label.bin"}),
                      Contains("label.bin") && Contains("label 10 of record 1"));
  REQUIRE_THROWS_WITH(read_cifar10<double>({dir / "none.bin"}),
                      Contains("none.bin") && Contains("not found"));
}
