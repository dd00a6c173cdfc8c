#pragma once
// Element-wise closeness of two tensors, relative to the expected value with a floor of 1,
// shared by the engine and forward-mode tests.
#include <catch2/catch.hpp>

#include <cmath>
#include <grokalign/core/tensor.hpp>

namespace test_support {

inline void check_close(const grokalign::Tensor<double>& a, const grokalign::Tensor<double>& b,
                        double tol = 1e-12) {
  REQUIRE(a.defined());
  REQUIRE(b.defined());
  REQUIRE(a.shape() == b.shape());
  for (grokalign::index_t i = 0; i < a.numel(); ++i) {
    INFO("element " << i << ": " << a.data()[i] << " vs " << b.data()[i]);
    CHECK(std::abs(a.data()[i] - b.data()[i]) <= tol * (1.0 + std::abs(b.data()[i])));
  }
}

}  // namespace test_support
