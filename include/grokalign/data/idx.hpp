#pragma once
// IDX files (the format of MNIST and Fashion-MNIST), raw or gzip-compressed.
//
// Layout: two zero bytes, a type byte, the number of dimensions d, then d big-endian
// 32-bit extents, then the data in row-major order. Only type 0x08 (unsigned bytes) is
// supported: every image and label set in that format uses it. A gzip file is recognised by
// its magic bytes (1f 8b), not by its name.
//
// The reader refuses, with a grokalign::Error (op "idx") naming the file: a missing or
// unreadable file, a corrupt or truncated gzip stream, a file shorter than its header, a
// wrong magic number, an unsupported type byte, zero dimensions, extents whose product
// overflows, and data shorter or longer than the extents announce (a trailing byte is as
// suspicious as a missing one: it means the header and the data disagree).
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "grokalign/core/error.hpp"
#include "grokalign/core/shape.hpp"
#include "grokalign/core/tensor.hpp"
#include "grokalign/data/bytes.hpp"

namespace grokalign {

// The contents of an IDX file of unsigned bytes.
struct IdxArray {
  std::vector<index_t> dims;
  std::vector<std::uint8_t> data;  // row-major, dims' product bytes
};

inline constexpr std::uint8_t kIdxUbyte = 0x08;

// Parses IDX bytes (already decompressed); `path` only names the file in errors.
inline IdxArray parse_idx(const std::vector<std::uint8_t>& bytes,
                          const std::filesystem::path& path) {
  using data_detail::fail_file;
  if (bytes.size() < 4)
    fail_file("idx", path,
              "truncated: " + std::to_string(bytes.size()) +
                  " bytes, shorter than the 4-byte magic number");
  if (bytes[0] != 0 || bytes[1] != 0)
    fail_file("idx", path,
              "wrong magic number (the first two bytes must be 0, found " +
                  std::to_string(bytes[0]) + " and " + std::to_string(bytes[1]) +
                  "): not an IDX file");
  if (bytes[2] != kIdxUbyte) {
    static const char* hex = "0123456789abcdef";
    fail_file("idx", path,
              std::string("unsupported type byte 0x") + hex[bytes[2] >> 4] + hex[bytes[2] & 15] +
                  " (only 0x08, unsigned bytes, is supported)");
  }
  const std::size_t ndims = bytes[3];
  if (ndims == 0) fail_file("idx", path, "wrong magic number: zero dimensions");
  const std::size_t header = 4 + 4 * ndims;
  if (bytes.size() < header)
    fail_file("idx", path,
              "truncated header: " + std::to_string(ndims) + " dimensions need " +
                  std::to_string(header) + " bytes, the file has " + std::to_string(bytes.size()));
  IdxArray out;
  std::uint64_t count = 1;
  bool overflow = false;
  std::string dims_text = "[";
  for (std::size_t i = 0; i < ndims; ++i) {
    const std::uint8_t* p = bytes.data() + 4 + 4 * i;
    const std::uint32_t d = std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 |
                            std::uint32_t(p[2]) << 8 | std::uint32_t(p[3]);
    out.dims.push_back(static_cast<index_t>(d));
    dims_text += (i ? ", " : "") + std::to_string(d);
    if (d != 0 && count > std::uint64_t(std::numeric_limits<index_t>::max()) / d) overflow = true;
    count *= d;
  }
  dims_text += "]";
  if (overflow)
    fail_file("idx", path, "dimensions " + dims_text + " overflow: their product is too large");
  const std::uint64_t have = bytes.size() - header;
  if (have < count)
    fail_file("idx", path,
              "truncated: dimensions " + dims_text + " need " + std::to_string(count) +
                  " data bytes, the file holds " + std::to_string(have));
  if (have > count)
    fail_file("idx", path,
              "size mismatch: " + std::to_string(have - count) +
                  " trailing bytes after the data of dimensions " + dims_text);
  out.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return out;
}

// Reads a raw or gzip IDX file of unsigned bytes.
inline IdxArray read_idx(const std::filesystem::path& path) {
  auto bytes = data_detail::read_bytes("idx", path);
  if (data_detail::is_gzip(bytes)) bytes = data_detail::gunzip("idx", path, bytes);
  return parse_idx(bytes, path);
}

// The IDX bytes (header and data) of unsigned-byte data with the given extents.
inline std::vector<std::uint8_t> encode_idx(const std::vector<index_t>& dims,
                                            const std::vector<std::uint8_t>& data) {
  if (dims.empty() || dims.size() > 255)
    throw Error("idx", "an IDX file has 1 to 255 dimensions, not " + std::to_string(dims.size()));
  std::uint64_t count = 1;
  for (index_t d : dims) {
    if (d < 0 || d > index_t(std::numeric_limits<std::int32_t>::max()))
      throw Error("idx", "extent " + std::to_string(d) + " does not fit an IDX header");
    count *= static_cast<std::uint64_t>(d);
  }
  if (count != data.size())
    throw Error("idx", std::to_string(data.size()) + " data bytes for dimensions holding " +
                           std::to_string(count));
  std::vector<std::uint8_t> out{0, 0, kIdxUbyte, static_cast<std::uint8_t>(dims.size())};
  out.reserve(4 + 4 * dims.size() + data.size());
  for (index_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(std::uint8_t(d >> shift));
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

// Writes an IDX file of unsigned bytes, gzip-compressed when `gzip` is true, through a
// temporary file renamed into place.
inline void write_idx(const std::filesystem::path& path, const std::vector<index_t>& dims,
                      const std::vector<std::uint8_t>& data, bool gzip) {
  auto bytes = encode_idx(dims, data);
  if (gzip) bytes = data_detail::gzip("idx", path, bytes);
  data_detail::write_bytes_atomic("idx", path, bytes);
}

// Images [N, H, W] as a tensor [N, 1, H, W] of values in [0, 1] (byte / 255), or only the
// first `limit` images when limit >= 0 (the experiments use the first 1024; converting all
// 60000 Fashion-MNIST images to double would take 376 MB).
template <Scalar T>
Tensor<T> idx_images(const IdxArray& idx, const std::filesystem::path& path, index_t limit = -1) {
  if (idx.dims.size() != 3)
    data_detail::fail_file("idx", path,
                           "expected images with 3 dimensions [N, H, W], the file has " +
                               std::to_string(idx.dims.size()));
  const index_t n = limit >= 0 ? std::min(limit, idx.dims[0]) : idx.dims[0];
  Tensor<T> out = Tensor<T>::empty(Shape{n, 1, idx.dims[1], idx.dims[2]});
  const T scale = T(1) / T(255);
  for (index_t i = 0; i < out.numel(); ++i) out.data()[i] = T(idx.data[i]) * scale;
  return out;
}

// Labels [N] as class indices, each checked to be below `classes` (when classes > 0).
inline std::vector<index_t> idx_labels(const IdxArray& idx, const std::filesystem::path& path,
                                       index_t classes = 0, index_t limit = -1) {
  if (idx.dims.size() != 1)
    data_detail::fail_file(
        "idx", path,
        "expected labels with 1 dimension [N], the file has " + std::to_string(idx.dims.size()));
  const index_t n = limit >= 0 ? std::min(limit, idx.dims[0]) : idx.dims[0];
  std::vector<index_t> out(idx.data.begin(), idx.data.begin() + n);
  if (classes > 0)
    for (index_t i = 0; i < n; ++i)
      if (out[i] >= classes)
        data_detail::fail_file("idx", path,
                               "label " + std::to_string(out[i]) + " at index " +
                                   std::to_string(i) + " is not below " + std::to_string(classes) +
                                   " classes");
  return out;
}

}  // namespace grokalign
