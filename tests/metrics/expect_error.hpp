#pragma once
// Runs `f` and checks that it throws a grokalign::Error whose message contains `part`.
#include <catch2/catch.hpp>

#include <grokalign/core/error.hpp>
#include <string>

namespace metrics_test {

template <class F>
void expect_error(F&& f, const std::string& part) {
  try {
    f();
  } catch (const grokalign::Error& e) {
    INFO("message: " << e.what());
    CHECK(std::string(e.what()).find(part) != std::string::npos);
    return;
  }
  FAIL("no grokalign::Error thrown (expected one mentioning '" << part << "')");
}

}  // namespace metrics_test
