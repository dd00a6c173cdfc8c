#pragma once
// The library's version, recorded in every run's config.json (kept equal to
// project(VERSION) in CMakeLists.txt; tests/run checks the two agree).
namespace grokalign {
inline constexpr const char* kVersion = "0.1.0";
}  // namespace grokalign
