#pragma once
// The two generated data sets of the paper: the XOR problem in high dimension (Sec 4.2)
// and modular addition (Sec 4.3, transformer run). Both draw only from the Generator they
// are given, in a documented order, so a seed fixes the data on every machine.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "grokalign/core/error.hpp"
#include "grokalign/core/random.hpp"
#include "grokalign/core/tensor.hpp"

namespace grokalign {

template <Scalar T>
struct XorData {
  Tensor<T> x;  // [n, p]
  Tensor<T> y;  // [n, 1], x1 * x2 in {-1, +1}
};

// n points in p dimensions: coordinates 0 and 1 are +-1, the other p - 2 are +-epsilon, each
// sign fair and independent; y = x[0] * x[1]. Draws: one gen.below(2) per coordinate, point by
// point, coordinate by coordinate (1 means +).
template <Scalar T>
XorData<T> make_xor(index_t n, index_t p, double epsilon, Generator& gen) {
  if (n < 0) throw Error("make_xor", "negative number of points " + std::to_string(n));
  if (p < 2)
    throw Error("make_xor", "p = " + std::to_string(p) + " < 2: XOR needs 2 signal coordinates");
  if (!(epsilon >= 0.0) || !std::isfinite(epsilon))
    throw Error("make_xor", "epsilon must be finite and >= 0, got " + std::to_string(epsilon));
  XorData<T> out{Tensor<T>::empty(Shape{n, p}), Tensor<T>::empty(Shape{n, 1})};
  const T eps = static_cast<T>(epsilon);
  for (index_t i = 0; i < n; ++i) {
    T* row = out.x.data() + i * p;
    for (index_t j = 0; j < p; ++j) {
      const T mag = j < 2 ? T(1) : eps;
      row[j] = gen.below(2) ? mag : -mag;
    }
    out.y.data()[i] = row[0] * row[1];
  }
  return out;
}

struct ModularAddition {
  index_t p = 0;                      // modulus; tokens 0..p-1 are numbers, token p is "="
  std::vector<index_t> train_tokens;  // [n_train * 3]: a, b, p per example
  std::vector<index_t> train_labels;  // [n_train]: (a + b) mod p
  std::vector<index_t> test_tokens;   // [n_test * 3]
  std::vector<index_t> test_labels;   // [n_test]

  index_t vocab() const { return p + 1; }
  index_t train_size() const { return static_cast<index_t>(train_labels.size()); }
  index_t test_size() const { return static_cast<index_t>(test_labels.size()); }
};

// All p^2 pairs (a, b), ordered a-major (pair a*p + b), shuffled by Fisher-Yates (i from
// p^2 - 1 down to 1, swap with gen.below(i + 1)); the first round(train_fraction * p^2)
// train, the rest test. Tokens feed `Indices(tokens, Shape{n, 3})`.
inline ModularAddition make_modular_addition(index_t p, double train_fraction, Generator& gen) {
  if (p < 2) throw Error("make_modular_addition", "modulus p = " + std::to_string(p) + " < 2");
  if (p > (index_t(1) << 20))
    throw Error("make_modular_addition", "modulus p = " + std::to_string(p) + " is too large");
  if (!(train_fraction >= 0.0 && train_fraction <= 1.0))
    throw Error("make_modular_addition",
                "train_fraction must be in [0, 1], got " + std::to_string(train_fraction));
  const index_t total = p * p;
  std::vector<index_t> pairs(total);
  for (index_t i = 0; i < total; ++i) pairs[i] = i;
  for (index_t i = total - 1; i >= 1; --i) {
    const index_t j = static_cast<index_t>(gen.below(static_cast<std::uint64_t>(i + 1)));
    std::swap(pairs[i], pairs[j]);
  }
  const index_t n_train = static_cast<index_t>(std::llround(train_fraction * double(total)));
  ModularAddition out;
  out.p = p;
  out.train_tokens.reserve(3 * n_train);
  out.test_tokens.reserve(3 * (total - n_train));
  for (index_t i = 0; i < total; ++i) {
    const index_t a = pairs[i] / p, b = pairs[i] % p;
    auto& tokens = i < n_train ? out.train_tokens : out.test_tokens;
    auto& labels = i < n_train ? out.train_labels : out.test_labels;
    tokens.insert(tokens.end(), {a, b, p});
    labels.push_back((a + b) % p);
  }
  return out;
}

}  // namespace grokalign
