#pragma once
// Reproducible random numbers. The generator is xoshiro256** (Blackman & Vigna) whose state
// is seeded from one 64-bit seed by splitmix64. Uniform doubles take the top 53 bits;
// normals use the Box-Muller transform (both values of a pair are used, in order).
// The streams are fixed by this file alone, not by the standard library, so a seed gives
// the same numbers with every compiler.
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <numbers>

#include "grokalign/core/tensor.hpp"

namespace grokalign {

class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) { reseed(seed); }

  void reseed(std::uint64_t seed) {
    std::uint64_t z = seed;
    for (auto& s : state_) s = splitmix64(z);
    has_spare_ = false;
  }

  std::uint64_t next_u64() {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  // Uniform in [0, 1).
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Standard normal.
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u1 = uniform();
    while (u1 <= 0.0) u1 = uniform();
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double theta = 2.0 * std::numbers::pi * u2;
    spare_ = r * std::sin(theta);
    has_spare_ = true;
    return r * std::cos(theta);
  }
  double normal(double mean, double stddev) { return mean + stddev * normal(); }
  bool bernoulli(double p) { return uniform() < p; }
  // Uniform integer in [0, n).
  std::uint64_t below(std::uint64_t n) { return n ? next_u64() % n : 0; }

  // The whole state as six words (xoshiro's four, the cached normal's bits, whether it is
  // cached), so that a checkpoint can continue the exact stream after a restart.
  using State = std::array<std::uint64_t, 6>;
  State state() const noexcept {
    return {
        state_[0],           state_[1], state_[2], state_[3], std::bit_cast<std::uint64_t>(spare_),
        has_spare_ ? 1u : 0u};
  }
  void set_state(const State& s) {
    if (s[5] > 1 || (s[0] | s[1] | s[2] | s[3]) == 0)
      throw Error("Generator::set_state", "not a generator state (all-zero words or bad flag)");
    for (int i = 0; i < 4; ++i) state_[i] = s[i];
    spare_ = std::bit_cast<double>(s[4]);
    has_spare_ = s[5] == 1;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static std::uint64_t splitmix64(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::uint64_t state_[4];
  double spare_ = 0.0;
  bool has_spare_ = false;
};

template <Scalar T>
Tensor<T> randn(const Shape& shape, Generator& gen, T mean = T(0), T stddev = T(1)) {
  Tensor<T> t = Tensor<T>::empty(shape);
  for (T& v : t) v = static_cast<T>(gen.normal(mean, stddev));
  return t;
}
template <Scalar T>
Tensor<T> rand_uniform(const Shape& shape, Generator& gen, T lo = T(0), T hi = T(1)) {
  Tensor<T> t = Tensor<T>::empty(shape);
  for (T& v : t) v = static_cast<T>(gen.uniform(lo, hi));
  return t;
}
// Entries are 1 with probability p, else 0.
template <Scalar T>
Tensor<T> rand_bernoulli(const Shape& shape, Generator& gen, double p) {
  Tensor<T> t = Tensor<T>::empty(shape);
  for (T& v : t) v = gen.bernoulli(p) ? T(1) : T(0);
  return t;
}

}  // namespace grokalign
