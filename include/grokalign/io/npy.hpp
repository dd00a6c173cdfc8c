#pragma once
// Single tensors in NumPy's .npy format, so that weights and data move between grokalign,
// NumPy and PyTorch (`np.save(f, t.numpy())`) without a Python bridge.
//
// Writing follows NumPy >= 1.24 byte for byte: format 1.0 (2.0 only if the header could
// not fit), descr '<f4' or '<f8', C order, the keys in sorted order, NumPy's spare
// space for growing the first axis, and spaces plus '\n' padding the preamble to a
// multiple of 64 bytes. Identical bytes mean diffs and checksums of saved runs agree
// whichever side wrote them.
//
// Reading accepts what any NumPy writes for such arrays: format 1.0, 2.0 and 3.0 (3.0
// only changes the header encoding to UTF-8, which is the same as ASCII for these
// headers), keys in any order, any padding (NumPy before 1.14 aligned to 16), and shapes
// of rank 0..6. A '<f4' file can be read as Tensor<double> and a '<f8' file as
// Tensor<float>: PyTorch users save float32 while our runs are float64, and refusing
// would push everyone into a conversion script. f4 -> f8 is exact; f8 -> f4 rounds to
// nearest (values beyond float's range become +-inf). Everything else is refused:
// big-endian, integer, bool, complex, structured and object dtypes, and Fortran order.
// The file must hold exactly the data its header announces; a short or overlong file is
// corrupt and refused rather than guessed at.
//
// Every failure is a grokalign::Error with op "npy" whose message names the file.
#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include "grokalign/core/error.hpp"
#include "grokalign/core/shape.hpp"
#include "grokalign/core/tensor.hpp"

namespace grokalign {

namespace detail::npy {

inline constexpr std::string_view kMagic = "\x93NUMPY";
inline constexpr std::size_t kMagicLen = 8;  // magic + major + minor
inline constexpr std::size_t kAlign = 64;
// NumPy leaves room for the first extent to grow to this many digits without rewriting
// the data (np.lib.format.GROWTH_AXIS_MAX_DIGITS).
inline constexpr std::size_t kGrowthDigits = 21;
// A header for our dtypes is under 200 bytes; the cap stops a corrupt length field from
// making us allocate gigabytes before we notice the file is garbage.
inline constexpr std::uint64_t kMaxHeaderLen = 1u << 20;
// Python literals in a valid header nest two levels deep; bounded so that "((((..." in
// a corrupt header cannot overflow the stack.
inline constexpr int kMaxNesting = 16;

[[noreturn]] inline void fail(const std::string& name, const std::string& what) {
  throw Error("npy", "'" + name + "': " + what);
}

// Element type of the data as stored in the file.
enum class Dtype { f4, f8 };

inline std::size_t itemsize(Dtype d) noexcept {
  return d == Dtype::f4 ? 4 : 8;
}
inline const char* descr(Dtype d) noexcept {
  return d == Dtype::f4 ? "<f4" : "<f8";
}

template <Scalar T>
constexpr Dtype dtype_of() noexcept {
  return std::is_same_v<T, float> ? Dtype::f4 : Dtype::f8;
}

// --- The header: a Python dict literal ---------------------------------------------------

// The subset of Python literals a header can contain; anything else is a parse error.
struct DictEntry;
struct Value {
  enum class Kind { str, integer, boolean, none, tuple, list, dict } kind = Kind::none;
  std::string str;
  std::int64_t integer = 0;
  bool boolean = false;
  std::vector<Value> items;  // tuple, list
  // dict, keys in file order. Not std::pair<std::string, Value>: a pair of an incomplete
  // type inside Value's own definition does not compile with Clang and libstdc++ 12.
  std::vector<DictEntry> entries;
};
struct DictEntry {
  std::string first;
  Value second;
};

inline const char* kind_name(Value::Kind k) noexcept {
  switch (k) {
    case Value::Kind::str:
      return "a string";
    case Value::Kind::integer:
      return "an integer";
    case Value::Kind::boolean:
      return "a bool";
    case Value::Kind::none:
      return "None";
    case Value::Kind::tuple:
      return "a tuple";
    case Value::Kind::list:
      return "a list";
    case Value::Kind::dict:
      return "a dict";
  }
  return "?";
}

class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& name) : s_(text), name_(name) {}

  Value parse_document() {
    skip_space();
    Value v = parse_value(0);
    skip_space();
    if (pos_ != s_.size()) error("unexpected text after the header dict");
    return v;
  }

 private:
  [[noreturn]] void error(const std::string& what) const {
    fail(name_, "malformed header (" + what + " at offset " + std::to_string(pos_) +
                    "): " + printable(s_));
  }
  static std::string printable(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 200)) {
      const auto u = static_cast<unsigned char>(c);
      if (u >= 0x20 && u < 0x7f) {
        out += c;
      } else {
        static constexpr char hex[] = "0123456789abcdef";
        out += "\\x";
        out += hex[u >> 4];
        out += hex[u & 15];
      }
    }
    if (s.size() > 200) out += "...";
    return out;
  }
  bool at_end() const noexcept { return pos_ >= s_.size(); }
  char peek() const noexcept { return at_end() ? '\0' : s_[pos_]; }
  void skip_space() {
    while (!at_end() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  void expect(char c) {
    if (peek() != c) error(std::string("expected '") + c + "'");
    ++pos_;
  }

  Value parse_value(int depth) {
    if (depth > kMaxNesting) error("nested too deeply");
    skip_space();
    if (at_end()) error("unexpected end");
    const char c = peek();
    if (c == '{') return parse_dict(depth);
    if (c == '(') return parse_sequence(depth, ')', Value::Kind::tuple);
    if (c == '[') return parse_sequence(depth, ']', Value::Kind::list);
    if (c == '\'' || c == '"') return parse_string();
    if (c == '-' || c == '+' || (c >= '0' && c <= '9')) return parse_int();
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) return parse_word();
    error(std::string("unexpected character '") + printable(std::string_view(&c, 1)) + "'");
  }

  Value parse_dict(int depth) {
    Value v;
    v.kind = Value::Kind::dict;
    expect('{');
    for (;;) {
      skip_space();
      if (peek() == '}') break;
      Value key = parse_value(depth + 1);
      if (key.kind != Value::Kind::str) error("dict key is not a string");
      skip_space();
      expect(':');
      Value val = parse_value(depth + 1);
      for (const auto& e : v.entries)
        if (e.first == key.str) error("duplicate key '" + key.str + "'");
      v.entries.push_back(DictEntry{std::move(key.str), std::move(val)});
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') error("expected ',' or '}'");
    }
    expect('}');
    return v;
  }

  // Python's rule: "(3)" is the integer 3, "(3,)" a tuple; "()" and "[]" are empty.
  Value parse_sequence(int depth, char close, Value::Kind kind) {
    Value v;
    v.kind = kind;
    ++pos_;
    bool trailing_comma = false;
    for (;;) {
      skip_space();
      if (peek() == close) break;
      v.items.push_back(parse_value(depth + 1));
      skip_space();
      trailing_comma = false;
      if (peek() == ',') {
        ++pos_;
        trailing_comma = true;
        continue;
      }
      if (peek() != close) error(std::string("expected ',' or '") + close + "'");
    }
    expect(close);
    if (kind == Value::Kind::tuple && v.items.size() == 1 && !trailing_comma)
      return std::move(v.items.front());
    return v;
  }

  Value parse_string() {
    Value v;
    v.kind = Value::Kind::str;
    const char quote = s_[pos_++];
    for (;;) {
      if (at_end()) error("unterminated string");
      char c = s_[pos_++];
      if (c == quote) break;
      if (c == '\n') error("newline inside a string");
      if (c == '\\') {
        if (at_end()) error("unterminated string");
        c = s_[pos_++];
      }
      v.str += c;
    }
    return v;
  }

  Value parse_int() {
    Value v;
    v.kind = Value::Kind::integer;
    bool negative = false;
    if (peek() == '-' || peek() == '+') negative = s_[pos_++] == '-';
    if (!(peek() >= '0' && peek() <= '9')) error("expected a digit");
    std::uint64_t n = 0;
    constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    while (peek() >= '0' && peek() <= '9') {
      n = n * 10 + static_cast<std::uint64_t>(s_[pos_++] - '0');
      if (n > kMax) error("integer too large");
    }
    if (peek() == 'L' || peek() == 'l') ++pos_;  // Python 2 long suffix in old headers
    if (peek() == '.' || peek() == 'e' || peek() == 'E' || peek() == 'j' || peek() == 'x')
      error("expected an integer");
    v.integer = negative ? -static_cast<std::int64_t>(n) : static_cast<std::int64_t>(n);
    return v;
  }

  Value parse_word() {
    const std::size_t start = pos_;
    while ((peek() >= 'A' && peek() <= 'Z') || (peek() >= 'a' && peek() <= 'z') ||
           (peek() >= '0' && peek() <= '9') || peek() == '_')
      ++pos_;
    const std::string_view w = s_.substr(start, pos_ - start);
    Value v;
    if (w == "True" || w == "False") {
      v.kind = Value::Kind::boolean;
      v.boolean = w == "True";
    } else if (w != "None") {
      pos_ = start;
      error("unknown name '" + std::string(w) + "'");
    }
    return v;
  }

  std::string_view s_;
  const std::string& name_;
  std::size_t pos_ = 0;
};

// --- Preamble and layout -------------------------------------------------------------

struct Layout {
  Dtype dtype = Dtype::f8;
  Shape shape;
  std::uint64_t data_offset = 0;  // bytes before the data (magic, length, header)
  std::uint64_t data_bytes = 0;   // numel * itemsize
};

// Magic, version and header length from the first bytes; returns the header's offset
// and length after checking both lie inside a file of `total` bytes.
struct Preamble {
  std::uint64_t header_offset = 0;
  std::uint64_t header_len = 0;
};

inline Preamble parse_preamble(std::string_view first, std::uint64_t total,
                               const std::string& name) {
  if (first.empty()) fail(name, "the file is empty");
  const std::size_t m = std::min(first.size(), kMagic.size());
  if (first.substr(0, m) != kMagic.substr(0, m))
    fail(name, "not a .npy file (it does not start with the magic string \\x93NUMPY)");
  if (first.size() < kMagicLen) fail(name, "truncated: the file ends inside the magic string");
  const auto major = static_cast<unsigned char>(first[6]);
  const auto minor = static_cast<unsigned char>(first[7]);
  if (minor != 0 || major < 1 || major > 3)
    fail(name, "unsupported .npy format version " + std::to_string(major) + "." +
                   std::to_string(minor) + " (supported: 1.0, 2.0, 3.0)");
  const std::size_t len_bytes = major == 1 ? 2 : 4;
  if (first.size() < kMagicLen + len_bytes)
    fail(name, "truncated: the file ends inside the header length");
  std::uint64_t len = 0;
  for (std::size_t i = 0; i < len_bytes; ++i)
    len |= std::uint64_t{static_cast<unsigned char>(first[kMagicLen + i])} << (8 * i);
  Preamble p;
  p.header_offset = kMagicLen + len_bytes;
  p.header_len = len;
  if (len > kMaxHeaderLen)
    fail(name, "header length " + std::to_string(len) + " is implausibly large (limit " +
                   std::to_string(kMaxHeaderLen) + ")");
  if (p.header_offset + len > total)
    fail(name, "truncated: the header announces " + std::to_string(len) + " bytes but only " +
                   std::to_string(total - p.header_offset) + " follow");
  return p;
}

inline const Value* find_key(const Value& dict, std::string_view key) {
  for (const auto& e : dict.entries)
    if (e.first == key) return &e.second;
  return nullptr;
}

inline std::string shape_text(const std::vector<std::int64_t>& dims) {
  std::string s = "(";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(dims[i]);
  }
  return s + (dims.size() == 1 ? ",)" : ")");
}

// Interprets the header text; data_offset is filled in, data_bytes computed from shape.
inline Layout parse_header(std::string_view text, std::uint64_t data_offset,
                           const std::string& name) {
  const Value d = HeaderParser(text, name).parse_document();
  if (d.kind != Value::Kind::dict)
    fail(name, std::string("header is ") + kind_name(d.kind) + ", not a dict");
  for (const auto& e : d.entries)
    if (e.first != "descr" && e.first != "fortran_order" && e.first != "shape")
      fail(name, "header has an unexpected key '" + e.first + "'");
  for (const char* key : {"descr", "fortran_order", "shape"})
    if (!find_key(d, key)) fail(name, std::string("header has no '") + key + "' key");

  const Value& descr_v = *find_key(d, "descr");
  if (descr_v.kind != Value::Kind::str)
    fail(name, "dtype is a structured or nested description (" +
                   std::string(kind_name(descr_v.kind)) + "); only '<f4' and '<f8' are supported");
  Layout l;
  if (descr_v.str == "<f4") {
    l.dtype = Dtype::f4;
  } else if (descr_v.str == "<f8") {
    l.dtype = Dtype::f8;
  } else if (descr_v.str == ">f4" || descr_v.str == ">f8") {
    fail(name, "dtype '" + descr_v.str +
                   "' is big-endian; only little-endian '<f4' and '<f8' are supported "
                   "(convert with arr.astype('<f8'))");
  } else {
    fail(name, "dtype '" + descr_v.str +
                   "' is not supported; only '<f4' (float32) and '<f8' (float64) are");
  }

  const Value& fortran_v = *find_key(d, "fortran_order");
  if (fortran_v.kind != Value::Kind::boolean)
    fail(name, std::string("fortran_order is ") + kind_name(fortran_v.kind) + ", not a bool");
  if (fortran_v.boolean)
    fail(name,
         "the array is stored in Fortran order, which is not supported; save a C-ordered "
         "copy (np.save(path, np.ascontiguousarray(arr)))");

  const Value& shape_v = *find_key(d, "shape");
  if (shape_v.kind != Value::Kind::tuple)
    fail(name, std::string("shape is ") + kind_name(shape_v.kind) + ", not a tuple");
  std::vector<std::int64_t> dims;
  for (const Value& item : shape_v.items) {
    if (item.kind != Value::Kind::integer)
      fail(name, std::string("shape has an entry that is ") + kind_name(item.kind));
    dims.push_back(item.integer);
  }
  for (std::int64_t e : dims)
    if (e < 0) fail(name, "shape " + shape_text(dims) + " has a negative extent");
  if (dims.size() > static_cast<std::size_t>(Shape::kMaxRank))
    fail(name, "shape " + shape_text(dims) + " has rank " + std::to_string(dims.size()) +
                   "; at most " + std::to_string(Shape::kMaxRank) + " is supported");

  // numel * itemsize must fit in 63 bits; a corrupt extent must not overflow silently.
  // Zero extents are skipped in the product so that a zero-size array with absurd other
  // extents is refused as well (as NumPy does) instead of overflowing Shape::numel().
  constexpr std::uint64_t kLimit = std::uint64_t{1} << 62;
  std::uint64_t bytes = itemsize(l.dtype);
  bool zero = false;
  for (std::int64_t e : dims) {
    if (e == 0) {
      zero = true;
      continue;
    }
    if (bytes > kLimit / static_cast<std::uint64_t>(e))
      fail(name, "shape " + shape_text(dims) + " is too large");
    bytes *= static_cast<std::uint64_t>(e);
  }
  l.shape = Shape(dims.begin(), dims.end());
  l.data_offset = data_offset;
  l.data_bytes = zero ? 0 : bytes;
  return l;
}

inline void check_data_size(const Layout& l, std::uint64_t total, const std::string& name) {
  const std::uint64_t have = total - l.data_offset;
  if (have == l.data_bytes) return;
  const std::string what = "shape " + l.shape.to_string() + " of '" + descr(l.dtype) + "' needs " +
                           std::to_string(l.data_bytes) + " data bytes, ";
  if (have < l.data_bytes)
    fail(name, "truncated: " + what + "the file has " + std::to_string(have));
  fail(name, what + "the file has " + std::to_string(have - l.data_bytes) +
                 " unexpected bytes after them");
}

// --- Data ---------------------------------------------------------------------------

template <class U>
using Bits = std::conditional_t<sizeof(U) == 4, std::uint32_t, std::uint64_t>;

template <class U>
U read_le(const char* p) noexcept {
  Bits<U> b = 0;
  for (std::size_t i = 0; i < sizeof(U); ++i)
    b |= static_cast<Bits<U>>(static_cast<unsigned char>(p[i])) << (8 * i);
  return std::bit_cast<U>(b);
}

template <class U>
void write_le(U v, char* p) noexcept {
  const auto b = std::bit_cast<Bits<U>>(v);
  for (std::size_t i = 0; i < sizeof(U); ++i) p[i] = static_cast<char>((b >> (8 * i)) & 0xff);
}

// Converts `count` stored elements at `src` into T at `dst`.
template <Scalar T>
void decode(const char* src, std::size_t count, Dtype stored, T* dst) noexcept {
  if (stored == dtype_of<T>() && std::endian::native == std::endian::little) {
    std::memcpy(dst, src, count * sizeof(T));
  } else if (stored == Dtype::f4) {
    for (std::size_t i = 0; i < count; ++i) dst[i] = static_cast<T>(read_le<float>(src + 4 * i));
  } else {
    for (std::size_t i = 0; i < count; ++i) dst[i] = static_cast<T>(read_le<double>(src + 8 * i));
  }
}

template <Scalar T>
void encode(const T* src, std::size_t count, char* dst) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(dst, src, count * sizeof(T));
  } else {
    for (std::size_t i = 0; i < count; ++i) write_le<T>(src[i], dst + sizeof(T) * i);
  }
}

// Magic, version, length and padded header exactly as numpy.save writes them.
template <Scalar T>
std::string preamble_for(const Shape& shape) {
  std::string h = "{'descr': '";
  h += descr(dtype_of<T>());
  h += "', 'fortran_order': False, 'shape': ";
  h += shape_text(std::vector<std::int64_t>(shape.begin(), shape.end()));
  h += ", }";
  if (shape.rank() > 0) h.append(kGrowthDigits - std::to_string(shape[0]).size(), ' ');
  const std::size_t hlen = h.size() + 1;  // + '\n'
  // NumPy's formula: a preamble already on the boundary still gets a full block of pad.
  auto pad_for = [&](std::size_t len_bytes) {
    return kAlign - (kMagicLen + len_bytes + hlen) % kAlign;
  };
  const bool v1 = hlen + pad_for(2) <= 0xffff;
  const std::size_t len_bytes = v1 ? 2 : 4;
  const std::size_t total_len = hlen + pad_for(len_bytes);
  std::string out(kMagic);
  out += static_cast<char>(v1 ? 1 : 2);
  out += '\0';
  for (std::size_t i = 0; i < len_bytes; ++i)
    out += static_cast<char>((total_len >> (8 * i)) & 0xff);
  out += h;
  out.append(pad_for(len_bytes), ' ');
  out += '\n';
  return out;
}

template <Scalar T>
void check_savable(const Tensor<T>& t, const std::string& name) {
  if (!t.defined()) fail(name, "cannot save an undefined (default-constructed) tensor");
}

}  // namespace detail::npy

// The .npy encoding of `t` (see the top of this file for the exact layout).
template <Scalar T>
std::string to_npy_bytes(const Tensor<T>& t) {
  detail::npy::check_savable(t, "<memory>");
  std::string out = detail::npy::preamble_for<T>(t.shape());
  const std::size_t offset = out.size();
  const auto n = static_cast<std::size_t>(t.numel());
  out.resize(offset + n * sizeof(T));
  detail::npy::encode(t.data(), n, out.data() + offset);
  return out;
}

// Parses .npy bytes; `name_for_errors` stands in for the file name in error messages.
template <Scalar T>
Tensor<T> from_npy_bytes(std::string_view bytes, const std::string& name_for_errors) {
  namespace np = detail::npy;
  const std::string& name = name_for_errors;
  const np::Preamble p = np::parse_preamble(bytes, bytes.size(), name);
  const np::Layout l = np::parse_header(bytes.substr(p.header_offset, p.header_len),
                                        p.header_offset + p.header_len, name);
  np::check_data_size(l, bytes.size(), name);
  Tensor<T> t = Tensor<T>::empty(l.shape);
  np::decode(bytes.data() + l.data_offset, static_cast<std::size_t>(t.numel()), l.dtype, t.data());
  return t;
}

template <Scalar T>
Tensor<T> load_npy(const std::filesystem::path& path) {
  namespace np = detail::npy;
  const std::string name = path.string();
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec && status.type() != std::filesystem::file_type::not_found)
    np::fail(name, "cannot access: " + ec.message());
  if (!std::filesystem::exists(status)) np::fail(name, "no such file");
  if (!std::filesystem::is_regular_file(status)) np::fail(name, "not a regular file");
  const std::uintmax_t total = std::filesystem::file_size(path, ec);
  if (ec) np::fail(name, "cannot determine the file size: " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) np::fail(name, "cannot open for reading");

  auto read_exact = [&](char* dst, std::uint64_t n, const char* what) {
    in.read(dst, static_cast<std::streamsize>(n));
    if (static_cast<std::uint64_t>(in.gcount()) != n)
      np::fail(name, std::string("truncated: the file ended while reading ") + what);
  };

  std::array<char, 12> head{};
  const std::size_t head_len = static_cast<std::size_t>(std::min<std::uintmax_t>(total, 12));
  read_exact(head.data(), head_len, "the magic string");
  const np::Preamble p = np::parse_preamble(std::string_view(head.data(), head_len), total, name);
  // The first read may have overshot into the header (version 1.0 has a shorter preamble).
  std::string header(head.data() + p.header_offset, head_len - p.header_offset);
  if (header.size() > p.header_len) header.resize(p.header_len);
  const std::size_t have = header.size();
  header.resize(p.header_len);
  read_exact(header.data() + have, p.header_len - have, "the header");
  const np::Layout l = np::parse_header(header, p.header_offset + p.header_len, name);
  np::check_data_size(l, total, name);

  in.clear();
  in.seekg(static_cast<std::streamoff>(l.data_offset));
  Tensor<T> t = Tensor<T>::empty(l.shape);
  const auto n = static_cast<std::size_t>(t.numel());
  if (l.dtype == np::dtype_of<T>() && std::endian::native == std::endian::little) {
    read_exact(reinterpret_cast<char*>(t.data()), l.data_bytes, "the data");
  } else {
    // Converted in blocks so a large file does not need a second full-size buffer.
    constexpr std::size_t kBlock = 1 << 14;
    const std::size_t item = np::itemsize(l.dtype);
    std::vector<char> buf(kBlock * item);
    for (std::size_t i = 0; i < n; i += kBlock) {
      const std::size_t m = std::min(kBlock, n - i);
      read_exact(buf.data(), m * item, "the data");
      np::decode(buf.data(), m, l.dtype, t.data() + i);
    }
  }
  return t;
}

// Like load_npy, and the array must have `expected` shape.
template <Scalar T>
Tensor<T> load_npy(const std::filesystem::path& path, const Shape& expected) {
  Tensor<T> t = load_npy<T>(path);
  if (!(t.shape() == expected))
    throw ShapeError("npy", "'" + path.string() + "': expected shape " + expected.to_string() +
                                ", the file holds shape " + t.shape().to_string());
  return t;
}

// Writes `t` to `path` via "<path>.tmp" and a rename, so that a crash or a full disk
// never leaves a half-written file under the real name (an old file stays intact).
template <Scalar T>
void save_npy(const std::filesystem::path& path, const Tensor<T>& t) {
  namespace np = detail::npy;
  const std::string name = path.string();
  np::check_savable(t, name);
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) np::fail(name, "cannot open '" + tmp.string() + "' for writing");
    const std::string pre = np::preamble_for<T>(t.shape());
    out.write(pre.data(), static_cast<std::streamsize>(pre.size()));
    const auto n = static_cast<std::size_t>(t.numel());
    if constexpr (std::endian::native == std::endian::little) {
      out.write(reinterpret_cast<const char*>(t.data()),
                static_cast<std::streamsize>(n * sizeof(T)));
    } else {
      std::vector<char> buf(n * sizeof(T));
      np::encode(t.data(), n, buf.data());
      out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
    }
    out.close();
    if (!out) {
      std::error_code ignored;
      std::filesystem::remove(tmp, ignored);
      np::fail(name, "writing '" + tmp.string() + "' failed (disk full?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    np::fail(name, "cannot move '" + tmp.string() + "' into place: " + ec.message());
  }
}

}  // namespace grokalign
