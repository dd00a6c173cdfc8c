#pragma once
// A fresh directory under the system temp path, removed with everything in it when the
// test ends (also when it fails), so io tests neither collide with each other nor litter.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>

namespace grokalign_test {

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    for (int attempt = 0; attempt < 100; ++attempt) {
      const auto name = "grokalign-io-" + std::to_string(now) + "-" + std::to_string(rd()) + "-" +
                        std::to_string(attempt);
      path_ = std::filesystem::temp_directory_path() / name;
      // create_directory is false when the name exists: another process got there first.
      if (std::filesystem::create_directory(path_)) return;
    }
    throw std::runtime_error("cannot create a unique temporary directory");
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const noexcept { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_file(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace grokalign_test
