// README.md's usage example is examples/quickstart.cpp (less its first comment line), which
// is compiled with the examples; this keeps the two identical.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>

#ifndef GROKALIGN_SOURCE_DIR
#error "GROKALIGN_SOURCE_DIR must name the source tree (the build defines it)"
#endif

namespace {
std::string read_text(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

TEST_CASE("README.md shows examples/quickstart.cpp verbatim", "[docs]") {
  const std::string root = GROKALIGN_SOURCE_DIR;
  std::string program = read_text(root + "/examples/quickstart.cpp");
  program = program.substr(program.find('\n') + 1);  // the "built with the examples" line
  const std::string readme = read_text(root + "/README.md");
  CHECK(readme.find("```cpp\n" + program + "```") != std::string::npos);
}
