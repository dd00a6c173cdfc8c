#pragma once
// CIFAR-10's binary format ("CIFAR-10 binary version"): each file is a run of 3073-byte
// records, one label byte (0..9) then 3072 pixel bytes, channel-major (the 1024 red values
// of the 32x32 image row by row, then green, then blue). data_batch_1..5.bin hold the
// 50000 training images, test_batch.bin the 10000 test images.
//
// Errors (grokalign::Error, op "cifar10") name the file: missing, a size that is not a
// whole number of records (with the size), a label above 9.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "grokalign/core/error.hpp"
#include "grokalign/core/tensor.hpp"
#include "grokalign/data/bytes.hpp"
#include "grokalign/data/dataset.hpp"

namespace grokalign {

inline constexpr index_t kCifar10Pixels = 3 * 32 * 32;
inline constexpr index_t kCifar10Record = 1 + kCifar10Pixels;

// Reads the records of the given files in order, up to `limit` samples when limit >= 0
// (files past the limit are not opened), as images [N, 3, 32, 32] in [0, 1].
template <Scalar T>
LabelledImages<T> read_cifar10(const std::vector<std::filesystem::path>& files,
                               index_t limit = -1) {
  std::vector<data_detail::Bytes> contents;
  index_t total = 0;
  std::string source;
  for (const auto& path : files) {
    if (limit >= 0 && total >= limit) break;
    auto bytes = data_detail::read_bytes("cifar10", path);
    if (bytes.size() % kCifar10Record != 0)
      data_detail::fail_file("cifar10", path,
                             "size " + std::to_string(bytes.size()) +
                                 " bytes is not a multiple of the 3073-byte record (1 label "
                                 "byte + 3x32x32 pixels): not a CIFAR-10 binary batch");
    const index_t records = static_cast<index_t>(bytes.size()) / kCifar10Record;
    for (index_t r = 0; r < records; ++r)
      if (bytes[r * kCifar10Record] > 9)
        data_detail::fail_file("cifar10", path,
                               "label " + std::to_string(bytes[r * kCifar10Record]) +
                                   " of record " + std::to_string(r) + " is not in 0..9");
    total += records;
    source += (source.empty() ? "" : ", ") + path.string();
    contents.push_back(std::move(bytes));
  }
  const index_t n = limit >= 0 ? std::min(limit, total) : total;
  LabelledImages<T> out;
  out.images = Tensor<T>::empty(Shape{n, 3, 32, 32});
  out.labels.reserve(n);
  out.classes = 10;
  out.name = "cifar10";
  out.source = source;
  const T scale = T(1) / T(255);
  index_t i = 0;
  for (const auto& bytes : contents) {
    for (std::size_t off = 0; off < bytes.size() && i < n; off += kCifar10Record, ++i) {
      out.labels.push_back(bytes[off]);
      T* dst = out.images.data() + i * kCifar10Pixels;
      for (index_t j = 0; j < kCifar10Pixels; ++j) dst[j] = T(bytes[off + 1 + j]) * scale;
    }
  }
  return out;
}

}  // namespace grokalign
