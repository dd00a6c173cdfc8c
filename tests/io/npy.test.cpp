// .npy reading and writing: round trips, bytes exactly as NumPy writes them, and clear
// errors (never a crash) on corrupt or unsupported files.
#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <grokalign/io/npy.hpp>
#include <limits>
#include <string>
#include <vector>

#include "temp_dir.hpp"

using namespace grokalign;
using Catch::Matchers::Contains;
using grokalign_test::TempDir;

namespace {

// The byte strings below are what NumPy 1.24.2 wrote into an io.BytesIO `f` (captured once;
// the suite itself needs no Python). NumPy >= 1.24 adds 21 - len(str(shape[0])) spaces
// of room to grow the first axis before padding the preamble to a multiple of 64 bytes;
// for these shapes NumPy 1.14..1.23 wrote the same bytes.

// np.save(f, np.arange(6, dtype='<f8').reshape(2, 3)) (NumPy 1.24.2): 176 bytes.
const std::string kNumpyArange2x3F8(
    "\x93NUMPY\x01\x00\x76\x00"  // magic, version 1.0, header length 118
    "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }"
    "                                        "
    "                  \n"               // 58 spaces of padding in all
    "\x00\x00\x00\x00\x00\x00\x00\x00"   // 0.0
    "\x00\x00\x00\x00\x00\x00\xf0\x3f"   // 1.0
    "\x00\x00\x00\x00\x00\x00\x00\x40"   // 2.0
    "\x00\x00\x00\x00\x00\x00\x08\x40"   // 3.0
    "\x00\x00\x00\x00\x00\x00\x10\x40"   // 4.0
    "\x00\x00\x00\x00\x00\x00\x14\x40",  // 5.0
    176);
// np.save(f, np.array([1.5, -2, 3.25, 0], dtype='<f4')) (NumPy 1.24.2): 144 bytes.
const std::string kNumpyVectorF4(
    "\x93NUMPY\x01\x00\x76\x00"  // magic, version 1.0, header length 118
    "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }"
    "                                        "
    "                    \n"  // 60 spaces of padding in all
    "\x00\x00\xc0\x3f"        // 1.5
    "\x00\x00\x00\xc0"        // -2.0
    "\x00\x00\x50\x40"        // 3.25
    "\x00\x00\x00\x00",       // 0.0
    144);
// np.save(f, np.array(3.5)) (NumPy 1.24.2): 136 bytes.
const std::string kNumpyScalarF8(
    "\x93NUMPY\x01\x00\x76\x00"  // magic, version 1.0, header length 118
    "{'descr': '<f8', 'fortran_order': False, 'shape': (), }"
    "                                        "
    "                      \n"           // 62 spaces of padding in all
    "\x00\x00\x00\x00\x00\x00\x0c\x40",  // 3.5
    136);
// np.lib.format.write_array(f, np.arange(3, dtype='<f4'), version=(2, 0)) (NumPy 1.24.2): 140
// bytes.
const std::string kNumpyV2VectorF4(
    "\x93NUMPY\x02\x00\x74\x00\x00\x00"  // magic, version 2.0, header length 116
    "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"
    "                                        "
    "                  \n"  // 58 spaces of padding in all
    "\x00\x00\x00\x00"      // 0.0
    "\x00\x00\x80\x3f"      // 1.0
    "\x00\x00\x00\x40",     // 2.0
    140);

// Little-endian bytes of each value, as the data section of a '<f4' or '<f8' file.
template <class U>
std::string le_bytes(const std::vector<U>& values) {
  std::string out;
  for (U v : values) {
    const auto bits =
        std::bit_cast<std::conditional_t<sizeof(U) == 4, std::uint32_t, std::uint64_t>>(v);
    for (std::size_t i = 0; i < sizeof(U); ++i) out += static_cast<char>((bits >> (8 * i)) & 0xff);
  }
  return out;
}

// A file with the given header text (padding and newline included, if wanted) and data.
std::string make_npy(const std::string& header, const std::string& data, int major = 1) {
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += '\0';
  const std::size_t len_bytes = major == 1 ? 2 : 4;
  for (std::size_t i = 0; i < len_bytes; ++i)
    out += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

// The message of the grokalign::Error that reading `bytes` raises; fails if none does.
template <class T = double>
std::string npy_error(const std::string& bytes, const std::string& name = "w.npy") {
  try {
    (void)from_npy_bytes<T>(bytes, name);
  } catch (const Error& e) {
    CHECK(e.op() == "npy");
    CHECK_THAT(e.what(), Contains("'" + name + "'"));
    return e.what();
  }
  FAIL("reading the bytes did not throw");
  return {};
}

template <class T>
Tensor<T> iota(const Shape& s, T scale) {
  auto t = Tensor<T>::empty(s);
  for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = (static_cast<T>(i) - T(3)) * scale;
  return t;
}

template <class T>
bool same_bits(const Tensor<T>& a, const Tensor<T>& b) {
  if (!(a.shape() == b.shape())) return false;
  for (index_t i = 0; i < a.numel(); ++i)
    if (std::bit_cast<std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>(
            a.data()[i]) !=
        std::bit_cast<std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>(
            b.data()[i]))
      return false;
  return true;
}

}  // namespace

TEMPLATE_TEST_CASE("npy round trip keeps shape and every bit of the values", "[io][npy]", float,
                   double) {
  using T = TestType;
  TempDir dir;
  const std::vector<Shape> shapes = {Shape{},
                                     Shape{5},
                                     Shape{3, 4},
                                     Shape{2, 3, 1, 4},
                                     Shape{2, 0, 3},
                                     Shape{0},
                                     Shape{1, 2, 1, 2, 1, 2}};
  for (const Shape& s : shapes) {
    INFO("shape " << s.to_string());
    Tensor<T> t = iota<T>(s, T(0.37));
    if (t.numel() >= 5) {  // the awkward values must survive too
      t.data()[0] = std::numeric_limits<T>::quiet_NaN();
      t.data()[1] = -std::numeric_limits<T>::infinity();
      t.data()[2] = T(-0.0);
      t.data()[3] = std::numeric_limits<T>::denorm_min();
      t.data()[4] = std::numeric_limits<T>::max();
    }
    const std::string bytes = to_npy_bytes(t);
    CHECK(bytes.size() % 64 == (static_cast<std::size_t>(t.numel()) * sizeof(T)) % 64);
    CHECK(bytes.substr(0, 8) == std::string("\x93NUMPY\x01\x00", 8));
    CHECK(same_bits(from_npy_bytes<T>(bytes, "mem"), t));

    const auto path = dir / "t.npy";
    save_npy(path, t);
    CHECK(grokalign_test::read_file(path) == bytes);
    CHECK(same_bits(load_npy<T>(path), t));
    CHECK_FALSE(std::filesystem::exists(dir / "t.npy.tmp"));
  }
}

TEST_CASE("npy reads the bytes numpy.save writes, and writes the same bytes", "[io][npy]") {
  const auto m = from_npy_bytes<double>(kNumpyArange2x3F8, "arange.npy");
  CHECK(m.shape() == Shape{2, 3});
  CHECK(m.to_vector() == std::vector<double>{0, 1, 2, 3, 4, 5});
  CHECK(to_npy_bytes(m) == kNumpyArange2x3F8);

  const auto v = from_npy_bytes<float>(kNumpyVectorF4, "vector.npy");
  CHECK(v.shape() == Shape{4});
  CHECK(v.to_vector() == std::vector<float>{1.5f, -2.0f, 3.25f, 0.0f});
  CHECK(to_npy_bytes(v) == kNumpyVectorF4);

  const auto s = from_npy_bytes<double>(kNumpyScalarF8, "scalar.npy");
  CHECK(s.rank() == 0);
  CHECK(s.item() == 3.5);
  CHECK(to_npy_bytes(s) == kNumpyScalarF8);

  TempDir dir;
  save_npy(dir / "arange.npy", Tensor<double>::from(Shape{2, 3}, {0, 1, 2, 3, 4, 5}));
  CHECK(grokalign_test::read_file(dir / "arange.npy") == kNumpyArange2x3F8);
  grokalign_test::write_file(dir / "vector.npy", kNumpyVectorF4);
  CHECK(load_npy<float>(dir / "vector.npy").to_vector() ==
        std::vector<float>{1.5f, -2.0f, 3.25f, 0.0f});
}

TEST_CASE("npy reads format 2.0 and 3.0 headers and writes 1.0", "[io][npy]") {
  const auto v = from_npy_bytes<float>(kNumpyV2VectorF4, "v2.npy");
  CHECK(v.shape() == Shape{3});
  CHECK(v.to_vector() == std::vector<float>{0.0f, 1.0f, 2.0f});
  // Only the length field differs: 2.0 has four bytes, so two fewer spaces of padding.
  const std::string v1 = to_npy_bytes(v);
  CHECK(v1[6] == '\x01');
  CHECK(v1.size() == kNumpyV2VectorF4.size());

  // 3.0 only switches the header to UTF-8, which changes nothing for these headers.
  std::string v3 = kNumpyV2VectorF4;
  v3[6] = '\x03';
  CHECK(from_npy_bytes<float>(v3, "v3.npy").to_vector() == v.to_vector());
}

TEST_CASE("npy header parsing is not fooled by order, quoting, spacing or old padding",
          "[io][npy]") {
  const std::string data = le_bytes<double>({0, 1, 2, 3, 4, 5});
  const std::vector<std::string> headers = {
      // keys in another order, double quotes, no trailing comma, aligned to 16 (NumPy < 1.14)
      "{\"shape\": (2, 3), \"fortran_order\": False, \"descr\": \"<f8\"}      \n",
      // generous spacing inside the dict and the tuple, trailing comma in the tuple
      "{ 'fortran_order' : False ,'shape':( 2 ,3, ) , 'descr':'<f8' , }\n",
      // Python 2 era long suffix, no padding and no newline at all
      "{'descr': '<f8', 'fortran_order': False, 'shape': (2L, 3L), }",
  };
  for (const auto& h : headers) {
    INFO(h);
    const auto t = from_npy_bytes<double>(make_npy(h, data), "h.npy");
    CHECK(t.shape() == Shape{2, 3});
    CHECK(t.to_vector() == std::vector<double>{0, 1, 2, 3, 4, 5});
  }
  CHECK(from_npy_bytes<double>(
            make_npy("{'descr':'<f8','fortran_order':False,'shape':()}", le_bytes<double>({7})),
            "s.npy")
            .item() == 7.0);
  CHECK(from_npy_bytes<double>(
            make_npy("{'descr':'<f8','fortran_order':False,'shape':(1,)}", le_bytes<double>({7})),
            "s.npy")
            .shape() == Shape{1});
}

TEST_CASE("npy converts float32 files to double and float64 files to float", "[io][npy]") {
  // The conversion is the documented choice: PyTorch saves float32, our runs use double.
  const auto d = from_npy_bytes<double>(kNumpyVectorF4, "f4.npy");
  CHECK(d.to_vector() == std::vector<double>{1.5, -2.0, 3.25, 0.0});

  const std::string f8 = make_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }\n",
                                  le_bytes<double>({0.1, 1e300, -1e-300}));
  const auto f = from_npy_bytes<float>(f8, "f8.npy");
  CHECK(f.at(0) == 0.1f);  // rounded to nearest
  CHECK(std::isinf(f.at(1)));
  CHECK(f.at(1) > 0);
  CHECK(f.at(2) == 0.0f);

  TempDir dir;
  grokalign_test::write_file(dir / "f8.npy", f8);
  CHECK(load_npy<float>(dir / "f8.npy").at(0) == 0.1f);
  save_npy(dir / "d.npy", d);
  CHECK(load_npy<float>(dir / "d.npy").to_vector() == std::vector<float>{1.5f, -2.0f, 3.25f, 0.0f});
}

TEST_CASE("npy refuses corrupt and unsupported input with a message saying why",
          "[io][npy][errors]") {
  const std::string good = kNumpyArange2x3F8;
  const std::string data = le_bytes<double>({0, 1, 2, 3, 4, 5});
  auto with_header = [&](const std::string& h) { return make_npy(h, data); };

  SECTION("bad magic") {
    std::string b = good;
    b[1] = 'M';
    CHECK_THAT(npy_error(b), Contains("not a .npy file"));
    CHECK_THAT(npy_error("PK\x03\x04 a zip, not an npy"), Contains("not a .npy file"));
    CHECK_THAT(npy_error(""), Contains("empty"));
  }
  SECTION("unsupported version") {
    std::string b = good;
    b[6] = '\x04';
    CHECK_THAT(npy_error(b), Contains("unsupported .npy format version 4.0"));
    b[6] = '\x01';
    b[7] = '\x01';
    CHECK_THAT(npy_error(b), Contains("version 1.1"));
  }
  SECTION("truncated magic, length or header") {
    CHECK_THAT(npy_error(good.substr(0, 4)), Contains("truncated"));
    CHECK_THAT(npy_error(good.substr(0, 9)), Contains("truncated"));
    CHECK_THAT(npy_error(good.substr(0, 60)),
               Contains("the header announces 118 bytes but only 50 follow"));
    std::string huge = good;
    huge[6] = '\x02';  // the 4-byte length now reads as 0x00760076 + data garbage
    CHECK_THAT(npy_error(huge), Contains("header length"));
  }
  SECTION("truncated data or trailing bytes") {
    CHECK_THAT(npy_error(good.substr(0, good.size() - 3)),
               Contains("truncated: shape [2, 3] of '<f8' needs 48 data bytes, the file has 45"));
    CHECK_THAT(npy_error(good + "xyz"), Contains("3 unexpected bytes after them"));
  }
  SECTION("Fortran order") {
    CHECK_THAT(
        npy_error(with_header("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }\n")),
        Contains("Fortran order, which is not supported"));
  }
  SECTION("dtypes other than little-endian float32 and float64") {
    CHECK_THAT(
        npy_error(with_header("{'descr': '>f8', 'fortran_order': False, 'shape': (2, 3), }\n")),
        Contains("dtype '>f8' is big-endian"));
    CHECK_THAT(
        npy_error(with_header("{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }\n")),
        Contains("dtype '<i8' is not supported"));
    CHECK_THAT(
        npy_error(with_header("{'descr': '|b1', 'fortran_order': False, 'shape': (6,), }\n")),
        Contains("dtype '|b1' is not supported"));
    CHECK_THAT(npy_error(with_header(
                   "{'descr': [('x', '<f8')], 'fortran_order': False, 'shape': (6,), }\n")),
               Contains("structured"));
  }
  SECTION("missing, unknown and ill-typed keys") {
    CHECK_THAT(npy_error(with_header("{'descr': '<f8', 'fortran_order': False, }\n")),
               Contains("header has no 'shape' key"));
    CHECK_THAT(npy_error(with_header("{'descr': '<f8', 'shape': (2, 3), }\n")),
               Contains("header has no 'fortran_order' key"));
    CHECK_THAT(npy_error(with_header(
                   "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), 'x': 1}\n")),
               Contains("unexpected key 'x'"));
    CHECK_THAT(npy_error(with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (6)}")),
               Contains("shape is an integer, not a tuple"));
    CHECK_THAT(npy_error(with_header("{'descr': '<f8', 'fortran_order': 0, 'shape': (6,)}")),
               Contains("fortran_order is an integer, not a bool"));
    CHECK_THAT(npy_error(with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (2, -3)}")),
               Contains("negative extent"));
    CHECK_THAT(npy_error(with_header(
                   "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 6)}")),
               Contains("rank 7; at most 6 is supported"));
    CHECK_THAT(npy_error(with_header("{'descr': '<f8', 'fortran_order': False, 'shape': "
                                     "(4294967296, 4294967296, 4294967296)}")),
               Contains("too large"));
    CHECK_THAT(npy_error(with_header("{'descr': '<f8', 'fortran_order': False, 'shape': "
                                     "(4294967296, 4294967296, 0)}")),
               Contains("too large"));
    CHECK_THAT(npy_error(with_header("{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, "
                                     "'shape': (6,)}")),
               Contains("duplicate key 'descr'"));
  }
  SECTION("malformed header text") {
    CHECK_THAT(npy_error(with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3")),
               Contains("malformed header"));
    CHECK_THAT(npy_error(with_header("{'descr': '<f8} garbage")), Contains("malformed header"));
    CHECK_THAT(npy_error(with_header("['descr', '<f8']\n")), Contains("header is a list"));
    CHECK_THAT(npy_error(with_header(std::string(10000, '(') + "\n")),
               Contains("nested too deeply"));
    CHECK_THAT(npy_error(with_header("{'descr': '<f8', 'fortran_order': False, 'shape': "
                                     "(99999999999999999999,)}")),
               Contains("integer too large"));
    CHECK_THAT(npy_error(with_header(std::string("{'descr': '<f8'\0}", 17))), Contains("\\x00"));
  }
}

TEST_CASE("npy never crashes on truncated or scrambled files", "[io][npy][errors]") {
  // Every prefix of a valid file, and the file with each header byte replaced, must give
  // a grokalign::Error or a tensor; anything else (a crash, std::bad_alloc, ...) fails.
  const std::string good = kNumpyVectorF4;
  for (std::size_t n = 0; n < good.size(); ++n)
    CHECK_THROWS_AS(from_npy_bytes<double>(good.substr(0, n), "cut.npy"), Error);
  for (std::size_t i = 0; i < 128; ++i) {
    for (int c : {0x00, 0x20, 0x27, 0x28, 0x29, 0x2c, 0x31, 0x39, 0x7b, 0x7d, 0xff}) {
      std::string b = good;
      b[i] = static_cast<char>(c);
      try {
        (void)from_npy_bytes<float>(b, "scrambled.npy");
      } catch (const Error&) {
      }
    }
  }
}

TEST_CASE("npy files: errors name the file, shapes are checked, writes are atomic",
          "[io][npy][errors]") {
  TempDir dir;
  const auto missing = dir / "missing.npy";
  CHECK_THROWS_WITH(load_npy<double>(missing),
                    Contains(missing.string()) && Contains("no such file"));
  CHECK_THROWS_WITH(load_npy<double>(dir.path()), Contains("not a regular file"));

  const auto path = dir / "m.npy";
  grokalign_test::write_file(path, kNumpyArange2x3F8);
  CHECK(load_npy<double>(path, Shape{2, 3}).numel() == 6);
  try {
    (void)load_npy<double>(path, Shape{3, 2});
    FAIL("the shape mismatch was not reported");
  } catch (const ShapeError& e) {
    CHECK(e.op() == "npy");
    CHECK_THAT(e.what(), Contains(path.string()) && Contains("expected shape [3, 2]") &&
                             Contains("the file holds shape [2, 3]"));
  }

  grokalign_test::write_file(dir / "cut.npy", kNumpyArange2x3F8.substr(0, 150));
  CHECK_THROWS_WITH(load_npy<double>(dir / "cut.npy"),
                    Contains("cut.npy") && Contains("truncated"));
  grokalign_test::write_file(dir / "short.npy", kNumpyArange2x3F8.substr(0, 100));
  CHECK_THROWS_WITH(load_npy<float>(dir / "short.npy"), Contains("truncated"));

  // A failed save leaves the previous file as it was and no temporary behind.
  std::filesystem::create_directory(dir / "m.npy.tmp");  // makes opening the temp file fail
  CHECK_THROWS_WITH(save_npy(path, Tensor<double>::zeros(Shape{4})),
                    Contains(path.string()) && Contains("cannot open"));
  CHECK(grokalign_test::read_file(path) == kNumpyArange2x3F8);
  std::filesystem::remove(dir / "m.npy.tmp");
  save_npy(path, Tensor<double>::zeros(Shape{4}));
  CHECK(load_npy<double>(path).shape() == Shape{4});
  CHECK_FALSE(std::filesystem::exists(dir / "m.npy.tmp"));

  CHECK_THROWS_WITH(save_npy(dir / "no" / "such" / "dir.npy", Tensor<double>::zeros(Shape{1})),
                    Contains("cannot open"));
  CHECK_THROWS_WITH(save_npy(dir / "u.npy", Tensor<double>()), Contains("undefined"));
}
