#pragma once
// Shared helpers for tests/optim: parameters and gradients from plain vectors, and
// comparisons against reference values the tests compute with plain doubles.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <vector>

#include <grokalign/core.hpp>
#include <grokalign/optim.hpp>
#include <grokalign/reverse.hpp>

namespace optim_test {

using grokalign::index_t;
using grokalign::Shape;
using Vec = std::vector<double>;

template <class T = double>
grokalign::Var<T> param(const Shape& shape, const Vec& values) {
  std::vector<T> v(values.begin(), values.end());
  return grokalign::Var<T>(grokalign::Tensor<T>::from(shape, v), true);
}
template <class T = double>
grokalign::Var<T> param(const Vec& values) {
  return param<T>(Shape{static_cast<index_t>(values.size())}, values);
}

// A fresh gradient buffer each call, so a test never shares storage with the parameter's
// grad across steps by accident.
template <class T>
void give_grad(grokalign::Var<T>& p, const Vec& values) {
  std::vector<T> v(values.begin(), values.end());
  p.set_grad(grokalign::Tensor<T>::from(p.shape(), v));
}

template <class T>
Vec values_of(const grokalign::Tensor<T>& t) {
  REQUIRE(t.defined());
  return Vec(t.begin(), t.end());
}

// Relative-plus-absolute closeness; NaN never matches (use check_nan for that).
inline void check_close(const Vec& got, const Vec& want, double tol = 1e-13) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
    CHECK(std::abs(got[i] - want[i]) <= tol * (1.0 + std::abs(want[i])));
  }
}
template <class T>
void check_close(const grokalign::Tensor<T>& got, const Vec& want, double tol = 1e-13) {
  check_close(values_of(got), want, tol);
}

}  // namespace optim_test
