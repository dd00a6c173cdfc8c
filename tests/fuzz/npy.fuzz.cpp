// .npy reader: from bytes (as f8 and f4) and from a file (load_npy reads the preamble,
// header and data in separate steps, so it has its own bounds to get right).
#include "grokalign/io/npy.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  grokalign_fuzz::expect_ok_or_error(
      [&] { (void)grokalign::from_npy_bytes<double>(bytes, "fuzz"); });
  grokalign_fuzz::expect_ok_or_error(
      [&] { (void)grokalign::from_npy_bytes<float>(bytes, "fuzz"); });
  const auto path = grokalign_fuzz::scratch_dir() / "fuzz.npy";
  grokalign_fuzz::write_file(path, data, size);
  grokalign_fuzz::expect_ok_or_error([&] {
    const auto t = grokalign::load_npy<double>(path);
    // The two readers must agree on what they accept and what they read.
    const auto u = grokalign::from_npy_bytes<double>(bytes, "fuzz");
    if (!(t.shape() == u.shape())) __builtin_trap();
  });
  return 0;
}
