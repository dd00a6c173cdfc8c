// Checkpoint headers whose numbers are not integers (found by tests/fuzz/checkpoint.fuzz.cpp:
// an extent of 2e32 was converted to int64, undefined behaviour): refused, naming the file.
#include <catch2/catch.hpp>
#include <cstring>
#include <string>

#include "grokalign/run/checkpoint.hpp"

namespace {

// A one-entry checkpoint whose header has `from` replaced by `to`, with a valid checksum.
std::string tampered(const std::string& from, const std::string& to) {
  grokalign::run::Checkpoint c;
  c.put("w", grokalign::Tensor<double>::zeros({2, 3}));
  std::string bytes = c.serialize();
  const auto at = bytes.find(from);
  REQUIRE(at != std::string::npos);
  REQUIRE(from.size() == to.size());  // the header length stays right
  bytes.replace(at, from.size(), to);
  const std::uint32_t crc = grokalign::run::detail::crc32_of(bytes.data(), bytes.size() - 4);
  std::memcpy(bytes.data() + bytes.size() - 4, &crc, 4);
  return bytes;
}

}  // namespace

TEST_CASE("a checkpoint header with non-integer numbers is refused", "[errors]") {
  using grokalign::run::Checkpoint;
  using grokalign::run::CheckpointError;
  CHECK_NOTHROW(Checkpoint::parse(tampered("[2,3]", "[2,3]"), "ok.bin"));
  for (const auto& [from, to] :
       {std::pair{"[2,3]", "[2e32]"}, std::pair{"[2,3]", "[2.5]"},
        std::pair{"\"offset\":0", "\"offset\":-0"}, std::pair{"\"bytes\":48", "\"bytes\":4e8"}}) {
    std::string f = from, t = to;
    t.resize(f.size(), ' ');  // JSON allows the padding
    const std::string bytes = tampered(f, t);
    CHECK_THROWS_AS(Checkpoint::parse(bytes, "bad.bin"), CheckpointError);
    CHECK_THROWS_WITH(Checkpoint::parse(bytes, "bad.bin"), Catch::Contains("bad.bin"));
  }
}
