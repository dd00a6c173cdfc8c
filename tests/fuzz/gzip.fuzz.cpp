// gzip inflation as the data readers use it: any bytes, several members, trailing garbage.
#include "fuzz_support.hpp"
#include "grokalign/data/bytes.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  grokalign_fuzz::expect_ok_or_error([&] {
    const std::vector<std::uint8_t> bytes(data, data + size);
    const auto out = grokalign::data_detail::gunzip("gzip", "fuzz.gz", bytes);
    // Round trip: what inflated must deflate and inflate back to itself.
    const auto again = grokalign::data_detail::gunzip(
        "gzip", "fuzz.gz", grokalign::data_detail::gzip("gzip", "fuzz.gz", out));
    if (again != out) __builtin_trap();
  });
  return 0;
}
