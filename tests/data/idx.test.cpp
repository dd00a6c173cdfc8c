// IDX files: raw and gzip round trips, and a clear error (naming the file and the fault)
// for every kind of bad file: missing, truncated, wrong magic, unsupported type, overflowing
// or disagreeing dimensions, corrupt gzip, and label/image counts that disagree.
#include <catch2/catch.hpp>
#include <cstdint>
#include <grokalign/data/idx.hpp>
#include <grokalign/data/locate.hpp>
#include <string>
#include <vector>

#include "../io/temp_dir.hpp"

using namespace grokalign;
using Catch::Matchers::Contains;
using grokalign_test::read_file;
using grokalign_test::TempDir;
using grokalign_test::write_file;

namespace {

std::vector<std::uint8_t> ramp(std::size_t n) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(i * 7 + 3);
  return v;
}

std::string as_string(const std::vector<std::uint8_t>& b) {
  return std::string(b.begin(), b.end());
}

// A raw IDX header + data: 00 00 <type> <ndims> then big-endian extents.
std::string idx_bytes(std::uint8_t type, const std::vector<std::uint32_t>& dims,
                      std::size_t data_bytes) {
  std::string s{'\0', '\0', static_cast<char>(type), static_cast<char>(dims.size())};
  for (auto d : dims)
    for (int sh = 24; sh >= 0; sh -= 8) s.push_back(static_cast<char>((d >> sh) & 0xff));
  s.append(data_bytes, '\x05');
  return s;
}

void require_idx_error(const std::filesystem::path& p, const std::string& what) {
  REQUIRE_THROWS_MATCHES(read_idx(p), Error,
                         Catch::Matchers::Predicate<Error>(
                             [&](const Error& e) {
                               const std::string m = e.what();
                               return m.find(p.string()) != std::string::npos &&
                                      m.find(what) != std::string::npos;
                             },
                             "message names the file and '" + what + "'"));
}

}  // namespace

TEST_CASE("IDX images and labels round-trip raw and gzip", "[data]") {
  TempDir dir;
  const auto pixels = ramp(3 * 4 * 5);
  for (bool gz : {false, true}) {
    const auto path = dir / (gz ? "img.gz" : "img");
    write_idx(path, {3, 4, 5}, pixels, gz);
    const std::string bytes = read_file(path);
    REQUIRE(static_cast<unsigned char>(bytes[0]) == (gz ? 0x1f : 0x00));
    if (!gz) REQUIRE(bytes.size() == 4 + 12 + 60);
    const IdxArray a = read_idx(path);
    REQUIRE(a.dims == std::vector<index_t>{3, 4, 5});
    REQUIRE(a.data == pixels);
    const auto t = idx_images<double>(a, path);
    REQUIRE(t.shape() == Shape{3, 1, 4, 5});
    CHECK(t.at(2, 0, 3, 4) == Approx(pixels[59] / 255.0));
    CHECK(idx_images<float>(a, path, 2).shape() == Shape{2, 1, 4, 5});
  }
  // Extents above 2^24 and 255 encode big-endian.
  const auto raw = as_string(encode_idx({2, 300}, std::vector<std::uint8_t>(600, 1)));
  CHECK(raw.substr(0, 12) == std::string("\0\0\x08\x02\0\0\0\x02\0\0\x01\x2c", 12));
}

TEST_CASE("IDX image and label files load as one data set", "[data]") {
  TempDir dir;
  write_idx(dir / "i.gz", {4, 2, 2}, ramp(16), true);
  write_idx(dir / "l.gz", {4}, {3, 0, 9, 1}, true);
  const auto ds = load_idx_dataset<double>(dir / "i.gz", dir / "l.gz", 10, "toy");
  CHECK(ds.images.shape() == Shape{4, 1, 2, 2});
  CHECK(ds.labels == std::vector<index_t>{3, 0, 9, 1});
  CHECK(ds.size() == 4);
  CHECK_THAT(ds.source, Contains("i.gz") && Contains("l.gz"));
  const auto two = load_idx_dataset<float>(dir / "i.gz", dir / "l.gz", 10, "toy", 2);
  CHECK(two.images.shape() == Shape{2, 1, 2, 2});
  CHECK(two.labels == std::vector<index_t>{3, 0});
}

TEST_CASE("Bad IDX files are refused with the file and the fault named", "[data][errors]") {
  TempDir dir;
  require_idx_error(dir / "absent.gz", "not found");

  write_file(dir / "tiny", std::string("\0\0", 2));
  require_idx_error(dir / "tiny", "truncated");

  write_file(dir / "short_header", idx_bytes(0x08, {3, 4, 5}, 0).substr(0, 10));
  require_idx_error(dir / "short_header", "truncated header");

  write_file(dir / "short_data", idx_bytes(0x08, {3, 4, 5}, 59));
  require_idx_error(dir / "short_data", "truncated");

  write_file(dir / "long_data", idx_bytes(0x08, {3, 4, 5}, 61));
  require_idx_error(dir / "long_data", "1 trailing bytes");

  auto magic = idx_bytes(0x08, {2}, 2);
  magic[0] = 'P';
  write_file(dir / "magic", magic);
  require_idx_error(dir / "magic", "wrong magic number");

  write_file(dir / "float", idx_bytes(0x0D, {2}, 8));
  require_idx_error(dir / "float", "unsupported type byte 0x0d");

  write_file(dir / "overflow", idx_bytes(0x08, {0xffffffffu, 0xffffffffu, 0xffffffffu}, 4));
  require_idx_error(dir / "overflow", "overflow");

  // gzip: valid header, then garbage; and a valid stream cut short.
  const auto gz = read_file((write_idx(dir / "ok.gz", {50}, ramp(50), true), dir / "ok.gz"));
  std::string corrupt = gz;
  for (std::size_t i = 10; i < corrupt.size(); ++i) corrupt[i] = static_cast<char>(0xff);
  write_file(dir / "corrupt.gz", corrupt);
  require_idx_error(dir / "corrupt.gz", "corrupt gzip");
  write_file(dir / "cut.gz", gz.substr(0, gz.size() / 2));
  require_idx_error(dir / "cut.gz", "truncated gzip");
  write_file(dir / "garbage_after.gz", gz + "xyz");
  require_idx_error(dir / "garbage_after.gz", "trailing garbage");
  // Two gzip members are one valid file.
  write_file(dir / "twice.gz", gz + gz);
  REQUIRE_THROWS_WITH(read_idx(dir / "twice.gz"), Contains("trailing bytes"));

  // Images and labels that disagree.
  write_idx(dir / "i", {3, 2, 2}, ramp(12), false);
  write_idx(dir / "l", {4}, {0, 1, 2, 3}, false);
  REQUIRE_THROWS_MATCHES(load_idx_dataset<double>(dir / "i", dir / "l", 10, "toy"), Error,
                         Catch::Matchers::Predicate<Error>([&](const Error& e) {
                           const std::string m = e.what();
                           return m.find("label count 4") != std::string::npos &&
                                  m.find("image count 3") != std::string::npos &&
                                  m.find((dir / "l").string()) != std::string::npos;
                         }));
  write_idx(dir / "l3", {3}, {0, 1, 12}, false);
  REQUIRE_THROWS_WITH(load_idx_dataset<double>(dir / "i", dir / "l3", 10, "toy"),
                      Contains("label 12 at index 2") && Contains("l3"));
  REQUIRE_THROWS_WITH(load_idx_dataset<double>(dir / "l3", dir / "l3", 10, "toy"),
                      Contains("expected images with 3 dimensions"));
  REQUIRE_THROWS_WITH(encode_idx({2, 2}, ramp(3)), Contains("3 data bytes"));
}
