#pragma once
// Every error the library raises on bad input is a grokalign::Error whose message names
// the operation that refused it, so users can find the offending call in a long program.
#include <stdexcept>
#include <string>
#include <string_view>

namespace grokalign {

class Error : public std::runtime_error {
 public:
  Error(std::string_view op, const std::string& what)
      : std::runtime_error(std::string(op) + ": " + what), op_(op) {}
  const std::string& op() const noexcept { return op_; }

 private:
  std::string op_;
};

// A shape that does not fit the operation (mismatch, wrong rank, out-of-range axis).
class ShapeError : public Error {
 public:
  using Error::Error;
};

// Autodiff misuse: backward on a non-scalar without a cotangent, unreachable inputs, etc.
class AutodiffError : public Error {
 public:
  using Error::Error;
};

namespace detail {
[[noreturn]] inline void throw_shape(std::string_view op, const std::string& what) {
  throw ShapeError(op, what);
}
[[noreturn]] inline void throw_autodiff(std::string_view op, const std::string& what) {
  throw AutodiffError(op, what);
}
}  // namespace detail

}  // namespace grokalign
