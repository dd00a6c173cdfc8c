// docs/tensor.md quotes examples/tensor_tour.cpp: every `// [name]` region of the program
// must appear in the document verbatim (less the region's indentation), so the compiled
// program and the page cannot drift apart.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#ifndef GROKALIGN_SOURCE_DIR
#error "GROKALIGN_SOURCE_DIR must name the source tree (the build defines it)"
#endif

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Region {
  std::string name, text;
};

// Regions between two identical "// [name]" lines, with the marker's indentation removed.
std::vector<Region> regions(const std::string& src) {
  std::vector<Region> out;
  std::istringstream in(src);
  std::string line, open, body;
  std::size_t indent = 0;
  while (std::getline(in, line)) {
    const auto start = line.find_first_not_of(' ');
    const bool marker =
        start != std::string::npos && line.compare(start, 4, "// [") == 0 && line.back() == ']';
    if (marker && open.empty()) {
      open = line.substr(start);
      indent = start;
      body.clear();
    } else if (marker && line.substr(start) == open) {
      out.push_back({open, body});
      open.clear();
    } else if (!open.empty()) {
      body += (line.size() >= indent ? line.substr(indent) : std::string()) + "\n";
    }
  }
  return out;
}

}  // namespace

TEST_CASE("docs/tensor.md quotes every region of examples/tensor_tour.cpp", "[docs]") {
  const std::string root = GROKALIGN_SOURCE_DIR;
  const auto found = regions(slurp(root + "/examples/tensor_tour.cpp"));
  const std::string doc = slurp(root + "/docs/tensor.md");
  CHECK(found.size() >= 8);
  for (const auto& r : found) {
    INFO(r.name << ":\n" << r.text);
    CHECK(doc.find("```cpp\n" + r.text + "```") != std::string::npos);
  }
}
