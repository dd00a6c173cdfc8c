#pragma once
// A checkpoint: named arrays and a JSON object of metadata in one file, written to a
// temporary name, flushed to disk and renamed into place, so a run killed at any moment
// (even while writing) leaves the previous checkpoint whole.
//
// File layout (little-endian):
//   8 bytes  "GACKPT01"
//   8 bytes  length H of the header
//   H bytes  JSON header: {"meta": {...}, "entries": [{"name", "dtype", "shape",
//            "offset", "bytes"}, ...]} with offsets into the payload
//   payload  the arrays' bytes, back to back
//   4 bytes  CRC-32 (zlib) of everything before it
// Every length, offset and shape is checked against the file before anything is read, so a
// truncated or corrupt file is refused with a message naming it, never read out of bounds.
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "grokalign/core/error.hpp"
#include "grokalign/core/random.hpp"
#include "grokalign/core/tensor.hpp"

namespace grokalign::run {

static_assert(std::endian::native == std::endian::little,
              "checkpoints are written in the machine's byte order, assumed little-endian");

// A checkpoint that cannot be read or does not fit the run resuming from it.
class CheckpointError : public Error {
 public:
  using Error::Error;
};

namespace detail {

inline constexpr char kCheckpointMagic[8] = {'G', 'A', 'C', 'K', 'P', 'T', '0', '1'};

template <class T>
constexpr const char* dtype_name() {
  if constexpr (std::is_same_v<T, float>) return "f4";
  if constexpr (std::is_same_v<T, double>) return "f8";
  if constexpr (std::is_same_v<T, std::int64_t>) return "i8";
  if constexpr (std::is_same_v<T, std::uint64_t>) return "u8";
}

inline std::size_t dtype_size(const std::string& dtype) {
  if (dtype == "f4") return 4;
  if (dtype == "f8" || dtype == "i8" || dtype == "u8") return 8;
  return 0;
}

inline std::string system_message(int err) {
  return std::strerror(err);
}

// Writes `bytes` to `path` durably: temporary file, fsync, rename, fsync of the folder.
// On failure (full disk, unwritable folder) the temporary is removed, the old file is left
// untouched, and the error names the path and the reason.
inline void write_file_atomically(const std::filesystem::path& path, const std::string& bytes,
                                  const char* op) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(op, "cannot write '" + tmp.string() + "': " + system_message(errno));
  std::size_t done = 0;
  int err = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  if (!err && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && !err) err = errno;
  if (!err && std::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err) {
    ::unlink(tmp.c_str());
    throw Error(op, "cannot write '" + path.string() + "': " + system_message(err));
  }
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);  // best effort: the rename is already atomic
    ::close(dfd);
  }
}

inline std::string read_whole_file(const std::filesystem::path& path, const char* op) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CheckpointError(op, "cannot open '" + path.string() + "'");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw CheckpointError(op, "cannot read '" + path.string() + "'");
  return bytes;
}

inline std::uint32_t crc32_of(const char* data, std::size_t n) {
  uLong crc = ::crc32(0L, Z_NULL, 0);
  while (n > 0) {  // zlib takes uInt lengths
    const uInt chunk = static_cast<uInt>(std::min<std::size_t>(n, 1u << 30));
    crc = ::crc32(crc, reinterpret_cast<const Bytef*>(data), chunk);
    data += chunk;
    n -= chunk;
  }
  return static_cast<std::uint32_t>(crc);
}

}  // namespace detail

class Checkpoint {
 public:
  // Free-form metadata: the step, the configuration, anything a program wants back.
  nlohmann::json& meta() noexcept { return meta_; }
  const nlohmann::json& meta() const noexcept { return meta_; }

  template <Scalar T>
  void put(const std::string& name, const Tensor<T>& t) {
    put_raw(name, detail::dtype_name<T>(), t.shape(), t.data(), t.numel() * sizeof(T));
  }
  void put(const std::string& name, const std::vector<std::uint64_t>& v) {
    put_raw(name, "u8", Shape{static_cast<index_t>(v.size())}, v.data(), v.size() * 8);
  }
  void put(const std::string& name, const std::vector<std::int64_t>& v) {
    put_raw(name, "i8", Shape{static_cast<index_t>(v.size())}, v.data(), v.size() * 8);
  }
  void put(const std::string& name, const Generator& gen) {
    const auto s = gen.state();
    put(name, std::vector<std::uint64_t>(s.begin(), s.end()));
  }

  bool has(const std::string& name) const { return entries_.count(name) != 0; }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : entries_) out.push_back(e.first);
    return out;
  }

  // The tensor stored under `name`; with `expected`, its shape must match.
  template <Scalar T>
  Tensor<T> tensor(const std::string& name, const Shape* expected = nullptr) const {
    const Entry& e = entry(name, detail::dtype_name<T>());
    if (expected && !(e.shape == *expected))
      throw CheckpointError("Checkpoint", "'" + name + "' has shape " + e.shape.to_string() +
                                              " in " + origin() + " but " + expected->to_string() +
                                              " is expected here");
    Tensor<T> t = Tensor<T>::empty(e.shape);
    if (t.numel()) std::memcpy(t.data(), e.bytes.data(), e.bytes.size());
    return t;
  }
  template <class I>
  requires(std::is_same_v<I, std::uint64_t> ||
           std::is_same_v<I, std::int64_t>) std::vector<I> integers(const std::string& name)
  const {
    const Entry& e = entry(name, detail::dtype_name<I>());
    std::vector<I> v(e.bytes.size() / sizeof(I));
    if (!v.empty()) std::memcpy(v.data(), e.bytes.data(), e.bytes.size());
    return v;
  }
  std::int64_t integer(const std::string& name) const {
    const auto v = integers<std::int64_t>(name);
    if (v.size() != 1)
      throw CheckpointError("Checkpoint", "'" + name + "' in " + origin() + " holds " +
                                              std::to_string(v.size()) + " numbers, not one");
    return v[0];
  }
  void restore(const std::string& name, Generator& gen) const {
    const auto v = integers<std::uint64_t>(name);
    Generator::State s{};
    if (v.size() != s.size())
      throw CheckpointError("Checkpoint", "'" + name + "' in " + origin() +
                                              " is not a generator state (" +
                                              std::to_string(v.size()) + " words)");
    std::copy(v.begin(), v.end(), s.begin());
    try {
      gen.set_state(s);
    } catch (const Error& e) {
      throw CheckpointError("Checkpoint", "'" + name + "' in " + origin() + ": " + e.what());
    }
  }

  std::string serialize() const {
    nlohmann::json entries = nlohmann::json::array();
    std::size_t offset = 0;
    for (const auto& [name, e] : entries_) {
      std::vector<index_t> dims(e.shape.begin(), e.shape.end());
      entries.push_back({{"name", name},
                         {"dtype", e.dtype},
                         {"shape", dims},
                         {"offset", offset},
                         {"bytes", e.bytes.size()}});
      offset += e.bytes.size();
    }
    const std::string header = nlohmann::json{{"meta", meta_}, {"entries", entries}}.dump();
    std::string out(detail::kCheckpointMagic, 8);
    append_u64(out, header.size());
    out += header;
    for (const auto& kv : entries_) out += kv.second.bytes;
    const std::uint32_t crc = detail::crc32_of(out.data(), out.size());
    out.append(reinterpret_cast<const char*>(&crc), 4);
    return out;
  }

  // `origin` names the source in error messages (a file name, "<memory>").
  static Checkpoint parse(const std::string& bytes, const std::string& origin) {
    Checkpoint c;
    c.origin_ = origin;
    auto fail = [&](const std::string& what) -> CheckpointError {
      return CheckpointError("load_checkpoint", "'" + origin + "' " + what);
    };
    if (bytes.size() < 8 + 8 + 4 || std::memcmp(bytes.data(), detail::kCheckpointMagic, 8) != 0)
      throw fail(bytes.size() < 8 ? "is truncated (" + std::to_string(bytes.size()) + " bytes)"
                                  : "is not a grokalign checkpoint (wrong magic bytes)");
    std::uint32_t stored_crc;
    std::memcpy(&stored_crc, bytes.data() + bytes.size() - 4, 4);
    if (detail::crc32_of(bytes.data(), bytes.size() - 4) != stored_crc)
      throw fail("is corrupt or truncated (checksum mismatch)");
    std::uint64_t header_len;
    std::memcpy(&header_len, bytes.data() + 8, 8);
    const std::size_t body = bytes.size() - 4 - 16;
    if (header_len > body) throw fail("has a header longer than the file");
    nlohmann::json header;
    try {
      header = nlohmann::json::parse(bytes.begin() + 16,
                                     bytes.begin() + 16 + static_cast<std::ptrdiff_t>(header_len));
    } catch (const nlohmann::json::exception& e) {
      throw fail(std::string("has a corrupt header: ") + e.what());
    }
    const std::size_t payload_at = 16 + header_len, payload_len = body - header_len;
    try {
      if (!header.is_object() || !header.contains("entries") || !header["entries"].is_array())
        throw fail("has a header without an entry list");
      c.meta_ = header.value("meta", nlohmann::json::object());
      for (const auto& je : header["entries"]) {
        const std::string name = je.at("name").get<std::string>();
        const std::string dtype = je.at("dtype").get<std::string>();
        const std::size_t elem = detail::dtype_size(dtype);
        if (!elem) throw fail("entry '" + name + "' has unknown dtype '" + dtype + "'");
        Shape shape;
        std::uint64_t numel = 1;
        if (!je.at("shape").is_array() || je.at("shape").size() > 6)
          throw fail("entry '" + name + "' has an impossible shape");
        for (const auto& d : je.at("shape")) {
          // A number that is not an integer (2e32) would convert out of range: undefined
          // behaviour (found by tests/fuzz/checkpoint.fuzz.cpp).
          if (!d.is_number_integer()) throw fail("entry '" + name + "' has an impossible shape");
          const auto v = d.get<std::int64_t>();
          if (v < 0 || (v > 0 && numel > (std::numeric_limits<std::uint64_t>::max() / 8) /
                                             static_cast<std::uint64_t>(v)))
            throw fail("entry '" + name + "' has an impossible shape");
          numel *= static_cast<std::uint64_t>(v);
          shape.push_back(v);
        }
        if (!je.at("offset").is_number_unsigned() || !je.at("bytes").is_number_unsigned())
          throw fail("entry '" + name + "' does not fit the file");
        const auto offset = je.at("offset").get<std::uint64_t>();
        const auto len = je.at("bytes").get<std::uint64_t>();
        if (len != numel * elem || offset > payload_len || len > payload_len - offset)
          throw fail("entry '" + name + "' does not fit the file");
        if (c.entries_.count(name)) throw fail("names entry '" + name + "' twice");
        c.entries_[name] = Entry{dtype, shape, bytes.substr(payload_at + offset, len)};
      }
    } catch (const nlohmann::json::exception& e) {
      throw fail(std::string("has a malformed header: ") + e.what());
    }
    return c;
  }

  void save(const std::filesystem::path& path) const {
    detail::write_file_atomically(path, serialize(), "save_checkpoint");
  }
  static Checkpoint load(const std::filesystem::path& path) {
    return parse(detail::read_whole_file(path, "load_checkpoint"), path.string());
  }

 private:
  struct Entry {
    std::string dtype;
    Shape shape;
    std::string bytes;
  };

  void put_raw(const std::string& name, const char* dtype, const Shape& shape, const void* data,
               std::size_t n) {
    Entry e{dtype, shape, std::string(n, '\0')};
    if (n) std::memcpy(e.bytes.data(), data, n);
    entries_[name] = std::move(e);
  }
  const Entry& entry(const std::string& name, const char* dtype) const {
    const auto it = entries_.find(name);
    if (it == entries_.end())
      throw CheckpointError("Checkpoint",
                            origin() + " has no entry '" + name + "' (is it from another model?)");
    if (it->second.dtype != dtype)
      throw CheckpointError("Checkpoint", "'" + name + "' in " + origin() + " holds " +
                                              it->second.dtype + " numbers, not " + dtype +
                                              " (was it written with another --dtype?)");
    return it->second;
  }
  std::string origin() const { return origin_.empty() ? "the checkpoint" : "'" + origin_ + "'"; }
  static void append_u64(std::string& out, std::uint64_t v) {
    out.append(reinterpret_cast<const char*>(&v), 8);
  }

  std::map<std::string, Entry> entries_;
  nlohmann::json meta_ = nlohmann::json::object();
  std::string origin_;
};

}  // namespace grokalign::run
