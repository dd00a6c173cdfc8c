#pragma once
// What every program's main() shares: errors become one line on stderr and an exit code
// (2 for a bad flag, 1 for anything else) instead of a crash, and --dtype picks the scalar
// type the program's templated body runs with.
#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <string>

#include "grokalign/run/flags.hpp"

namespace grokalign::run {

template <class Body>
int guarded_main(Body&& body) {
  try {
    return body();
  } catch (const FlagError& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
}

// Calls body.template operator()<double>() or <float>() as --dtype says.
template <class Body>
int with_dtype(const std::string& dtype, Body&& body) {
  if (dtype == "f64") return body.template operator()<double>();
  if (dtype == "f32") return body.template operator()<float>();
  throw FlagError("--dtype", "must be f64 or f32 (got " + dtype + ")");
}

}  // namespace grokalign::run
