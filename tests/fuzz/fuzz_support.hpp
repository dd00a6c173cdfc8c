#pragma once
// Shared by the libFuzzer targets: a private scratch folder per process (the targets that
// read files write the input there first) and the rule every target follows: a reader may
// refuse an input only with grokalign::Error; any other exception, a crash, a sanitizer
// report or a hang is a finding.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "grokalign/core/error.hpp"

namespace grokalign_fuzz {

// /dev/shm when present: every iteration writes a file, and memory is faster than disk.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::filesystem::path base = std::filesystem::is_directory("/dev/shm")
                                     ? "/dev/shm"
                                     : std::filesystem::temp_directory_path();
    auto d = base / ("grokalign_fuzz_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline void write_file(const std::filesystem::path& path, const std::uint8_t* data,
                       std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

// Runs `f`, accepting a refusal as grokalign::Error with a message; anything else escapes
// and libFuzzer reports it (an uncaught exception aborts).
template <class F>
void expect_ok_or_error(F&& f) {
  try {
    f();
  } catch (const grokalign::Error& e) {
    if (std::string(e.what()).empty()) __builtin_trap();  // a refusal must say why
  }
}

}  // namespace grokalign_fuzz
