#pragma once
// Whole files as bytes, gzip in memory (zlib), and writing by "temporary name, then rename",
// for the data readers and the MNIST conversion. Data files are at most tens of megabytes,
// so reading a file whole is simpler and no slower than streaming it, and it lets every
// size check happen before anything is parsed.
//
// Every failure is a grokalign::Error whose op is the caller's and whose message names the
// file. Needs zlib (link -lz / ZLIB::ZLIB).
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <system_error>
#include <vector>

#include "grokalign/core/error.hpp"

namespace grokalign::data_detail {

using Bytes = std::vector<std::uint8_t>;

[[noreturn]] inline void fail_file(std::string_view op, const std::filesystem::path& path,
                                   const std::string& what) {
  throw Error(op, "'" + path.string() + "': " + what);
}

inline Bytes read_bytes(std::string_view op, const std::filesystem::path& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) fail_file(op, path, "file not found");
  if (std::filesystem::is_directory(status)) fail_file(op, path, "is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_file(op, path, std::string("cannot open for reading: ") + std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) fail_file(op, path, "cannot determine the file size");
  in.seekg(0, std::ios::beg);
  Bytes bytes(static_cast<std::size_t>(size));
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size))
    fail_file(op, path, "read error after " + std::to_string(in.gcount()) + " bytes");
  return bytes;
}

inline bool is_gzip(const Bytes& bytes) {
  return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

// Inflates every gzip member of `in` (gzip allows several, concatenated). A stream that
// stops early is "truncated", invalid data is "corrupt"; both name the file.
inline Bytes gunzip(std::string_view op, const std::filesystem::path& path, const Bytes& in) {
  Bytes out;
  // The trailer's ISIZE is the uncompressed size mod 2^32: a good first reservation for
  // one member under 4 GiB, capped so that a corrupt trailer cannot reserve gigabytes, and
  // by deflate's largest ratio (1032:1), so that a 30-byte file cannot reserve 256 MB
  // (found by tests/fuzz/gzip.fuzz.cpp: each such reservation cost milliseconds).
  if (in.size() >= 4) {
    const std::size_t n = in.size();
    const std::uint32_t isize = std::uint32_t(in[n - 4]) | std::uint32_t(in[n - 3]) << 8 |
                                std::uint32_t(in[n - 2]) << 16 | std::uint32_t(in[n - 1]) << 24;
    out.reserve(std::min({std::size_t(isize), std::size_t(1) << 28, n * 1032}));
  }
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) fail_file(op, path, "zlib inflateInit2 failed");
  std::size_t consumed = 0;
  int ret = Z_OK;
  unsigned char chunk[1 << 16];
  while (true) {
    zs.next_in = const_cast<Bytef*>(in.data() + consumed);
    const std::size_t avail = std::min<std::size_t>(in.size() - consumed, 1u << 30);
    zs.avail_in = static_cast<uInt>(avail);
    zs.next_out = chunk;
    zs.avail_out = sizeof chunk;
    ret = inflate(&zs, Z_NO_FLUSH);
    consumed += avail - zs.avail_in;
    out.insert(out.end(), chunk, chunk + (sizeof chunk - zs.avail_out));
    if (ret == Z_STREAM_END) {
      if (consumed == in.size()) break;
      // Another member follows, or garbage: only a gzip magic may follow.
      if (in.size() - consumed < 2 || in[consumed] != 0x1f || in[consumed + 1] != 0x8b) {
        inflateEnd(&zs);
        fail_file(op, path,
                  "corrupt gzip: " + std::to_string(in.size() - consumed) +
                      " bytes of trailing garbage after the compressed data");
      }
      inflateReset(&zs);
      continue;
    }
    if (ret == Z_OK) continue;
    if (ret == Z_BUF_ERROR && consumed == in.size()) {
      inflateEnd(&zs);
      fail_file(op, path,
                "truncated gzip: the compressed stream ends early (after " +
                    std::to_string(in.size()) + " bytes)");
    }
    const std::string msg = zs.msg ? zs.msg : "error " + std::to_string(ret);
    inflateEnd(&zs);
    fail_file(op, path, "corrupt gzip data (" + msg + ")");
  }
  inflateEnd(&zs);
  return out;
}

// A gzip file of `in` (zlib's default level; the header's time stamp is 0, so the same
// input always gives the same bytes).
inline Bytes gzip(std::string_view op, const std::filesystem::path& path, const Bytes& in) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    fail_file(op, path, "zlib deflateInit2 failed");
  Bytes out(deflateBound(&zs, static_cast<uLong>(in.size())) + 64);
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  const int ret = deflate(&zs, Z_FINISH);
  const std::size_t written = out.size() - zs.avail_out;
  deflateEnd(&zs);
  if (ret != Z_STREAM_END) fail_file(op, path, "zlib deflate failed (" + std::to_string(ret) + ")");
  out.resize(written);
  return out;
}

// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
// reader (or an interrupted conversion) never sees half a file.
inline void write_bytes_atomic(std::string_view op, const std::filesystem::path& path,
                               const Bytes& bytes) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail_file(op, tmp, std::string("cannot open for writing: ") + std::strerror(errno));
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      std::error_code ignored;
      out.close();
      std::filesystem::remove(tmp, ignored);
      fail_file(op, tmp, "write failed (disk full?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    fail_file(op, path, "cannot move the temporary file into place: " + ec.message());
  }
}

}  // namespace grokalign::data_detail
