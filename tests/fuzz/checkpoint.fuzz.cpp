// Checkpoint reader. The CRC-32 guards everything behind it, so a fuzzer flipping bytes
// would rarely get past it: when the first byte is odd, the last four bytes are replaced by
// the right checksum first, so the header and entry checks get fuzzed too. Every entry the
// parser accepts is then read back the ways a resume does.
#include <zlib.h>

#include "fuzz_support.hpp"
#include "grokalign/run/checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  if (size >= 20 && (data[0] & 1)) {
    bytes[0] = 'G';  // the magic's first byte, which the flag bit would spoil
    const std::uint32_t crc = grokalign::run::detail::crc32_of(bytes.data(), size - 4);
    std::memcpy(bytes.data() + size - 4, &crc, 4);
  }
  grokalign_fuzz::expect_ok_or_error([&] {
    const auto c = grokalign::run::Checkpoint::parse(bytes, "fuzz.bin");
    for (const auto& name : c.names()) {
      grokalign_fuzz::expect_ok_or_error([&] { (void)c.tensor<double>(name); });
      grokalign_fuzz::expect_ok_or_error([&] { (void)c.tensor<float>(name); });
      grokalign_fuzz::expect_ok_or_error([&] { (void)c.integers<std::int64_t>(name); });
      grokalign_fuzz::expect_ok_or_error([&] { (void)c.integer(name); });
      grokalign_fuzz::expect_ok_or_error([&] {
        grokalign::Generator g(0);
        c.restore(name, g);
      });
    }
    // What parsed must serialise and parse back to the same entries.
    const auto again = grokalign::run::Checkpoint::parse(c.serialize(), "again");
    if (again.names() != c.names()) __builtin_trap();
  });
  return 0;
}
