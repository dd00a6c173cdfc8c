// checkpoint_diff: what the fault tests need to know about checkpoint.bin files.
//   checkpoint_diff step FILE               prints the step the checkpoint was taken at
//   checkpoint_diff names FILE              prints the entry names, one per line
//   checkpoint_diff same A B [PREFIX...]    exit 0 when every entry (or every entry whose
//                                           name starts with a PREFIX) is bit-identical
//                                           in A and B; else names the first difference
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "grokalign/run/checkpoint.hpp"

namespace {

using grokalign::run::Checkpoint;

// An entry's bytes whatever its dtype (the reader checks the dtype, so each is tried).
std::string raw(const Checkpoint& c, const std::string& name) {
  auto bytes = [](const auto* p, std::size_t n) {
    return std::string(reinterpret_cast<const char*>(p), n * sizeof(*p));
  };
  try {
    const auto t = c.tensor<double>(name);
    return "f8" + bytes(t.data(), static_cast<std::size_t>(t.numel())) + t.shape().to_string();
  } catch (const grokalign::Error&) {
  }
  try {
    const auto t = c.tensor<float>(name);
    return "f4" + bytes(t.data(), static_cast<std::size_t>(t.numel())) + t.shape().to_string();
  } catch (const grokalign::Error&) {
  }
  try {
    const auto v = c.integers<std::int64_t>(name);
    return "i8" + bytes(v.data(), v.size());
  } catch (const grokalign::Error&) {
  }
  const auto v = c.integers<std::uint64_t>(name);
  return "u8" + bytes(v.data(), v.size());
}

bool selected(const std::string& name, const std::vector<std::string>& prefixes) {
  if (prefixes.empty()) return true;
  for (const auto& p : prefixes)
    if (name.rfind(p, 0) == 0) return true;
  return false;
}

int same(const Checkpoint& a, const Checkpoint& b, const std::vector<std::string>& prefixes,
         const char* name_a, const char* name_b) {
  std::vector<std::string> names_a, names_b;
  for (const auto& n : a.names())
    if (selected(n, prefixes)) names_a.push_back(n);
  for (const auto& n : b.names())
    if (selected(n, prefixes)) names_b.push_back(n);
  if (names_a != names_b) {
    std::fprintf(stderr, "checkpoint_diff: %s and %s hold different entries (%zu vs %zu)\n", name_a,
                 name_b, names_a.size(), names_b.size());
    return 1;
  }
  if (names_a.empty()) {
    std::fprintf(stderr, "checkpoint_diff: no entry matches the prefixes\n");
    return 1;
  }
  for (const auto& n : names_a)
    if (raw(a, n) != raw(b, n)) {
      std::fprintf(stderr, "checkpoint_diff: entry '%s' differs between %s and %s\n", n.c_str(),
                   name_a, name_b);
      return 1;
    }
  std::printf("%zu entries identical\n", names_a.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string cmd = argc > 1 ? argv[1] : "";
    if (cmd == "step" && argc == 3) {
      std::printf("%lld\n", static_cast<long long>(
                                Checkpoint::load(argv[2]).meta().at("step").get<std::int64_t>()));
      return 0;
    }
    if (cmd == "names" && argc == 3) {
      for (const auto& n : Checkpoint::load(argv[2]).names()) std::printf("%s\n", n.c_str());
      return 0;
    }
    if (cmd == "same" && argc >= 4)
      return same(Checkpoint::load(argv[2]), Checkpoint::load(argv[3]),
                  std::vector<std::string>(argv + 4, argv + argc), argv[2], argv[3]);
    std::fprintf(stderr, "usage: checkpoint_diff step FILE | names FILE | same A B [PREFIX...]\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "checkpoint_diff: %s\n", e.what());
    return 2;
  }
}
