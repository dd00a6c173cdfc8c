#pragma once
// Fourier analysis of the modular-addition transformer (Nanda et al.; GrokAlign Figs 7-8):
// the real Fourier basis of Z_p, the norm of each frequency in an embedding W_E and in
// W_U^T W_out, the Gini coefficient of such a profile (how sparse in frequency the learned
// solution is), and the key frequencies.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "grokalign/core/error.hpp"
#include "grokalign/core/tensor.hpp"

namespace grokalign::metrics {

namespace detail {
inline void check_modulus(const char* op, index_t p) {
  if (p < 3 || p % 2 == 0)
    throw Error(op, "the modulus p must be odd and at least 3, got " + std::to_string(p));
}
}  // namespace detail

// Number of frequencies of Z_p in a profile: the constant and k = 1..(p-1)/2.
inline index_t num_frequencies(index_t p) {
  return (p - 1) / 2 + 1;
}

// The real Fourier basis of Z_p (odd p) as a [p, p] matrix with orthonormal rows:
// row 0 the constant 1/sqrt(p); rows 2k-1 and 2k cos(2 pi k n / p) and sin(2 pi k n / p)
// times sqrt(2/p), for k = 1..(p-1)/2; column n is the residue n.
template <Scalar T>
Tensor<T> fourier_basis(index_t p) {
  detail::check_modulus("fourier_basis", p);
  Tensor<T> B = Tensor<T>::empty(Shape{p, p});
  const double c0 = 1.0 / std::sqrt(static_cast<double>(p));
  const double ck = std::sqrt(2.0 / static_cast<double>(p));
  for (index_t n = 0; n < p; ++n) B.data()[n] = static_cast<T>(c0);
  for (index_t k = 1; k <= (p - 1) / 2; ++k)
    for (index_t n = 0; n < p; ++n) {
      // k n mod p keeps the angle small, so large p loses no accuracy.
      const double angle =
          2.0 * std::numbers::pi * static_cast<double>((k * n) % p) / static_cast<double>(p);
      B.data()[(2 * k - 1) * p + n] = static_cast<T>(ck * std::cos(angle));
      B.data()[(2 * k) * p + n] = static_cast<T>(ck * std::sin(angle));
    }
  return B;
}

// The Fourier-norm profile of a matrix M [p or p + 1, n] whose rows are indexed by the
// residues 0..p-1 (a row p, the "=" token, is ignored): F = basis * M[:p] ([p, n]), and
// entry k is the L2 norm of frequency k, its cos and sin rows together (entry 0: the
// constant row). (p - 1)/2 + 1 entries.
template <Scalar T>
Tensor<T> fourier_norms(const Tensor<T>& M, index_t p) {
  constexpr const char* op = "fourier_norms";
  detail::check_modulus(op, p);
  if (M.rank() != 2 || (M.dim(0) != p && M.dim(0) != p + 1))
    throw Error(op, "needs a matrix with p = " + std::to_string(p) + " or p + 1 rows, got " +
                        M.shape().to_string());
  const Tensor<T> B = fourier_basis<T>(p);
  const auto F = (B.matrix() * M.matrix().topRows(p)).eval();
  Tensor<T> out = Tensor<T>::empty(Shape{num_frequencies(p)});
  out.data()[0] = F.row(0).norm();
  for (index_t k = 1; k < num_frequencies(p); ++k)
    out.data()[k] = std::sqrt(F.row(2 * k - 1).squaredNorm() + F.row(2 * k).squaredNorm());
  return out;
}

// Profile of an embedding W_E [p or p + 1, d_model] (embed.W_E; rows are input tokens).
template <Scalar T>
Tensor<T> embedding_fourier_norms(const Tensor<T>& W_E, index_t p) {
  return fourier_norms(W_E, p);
}

// Profile of W_U^T W_out, the direct effect of each MLP neuron on each output logit:
// W_U [d_model, p or p + 1] (unembed.W_U) and W_out [d_model, d_mlp] (blocks.0.mlp.W_out),
// so W_U^T W_out is [p or p + 1, d_mlp] with rows indexed by the output token.
template <Scalar T>
Tensor<T> unembed_fourier_norms(const Tensor<T>& W_U, const Tensor<T>& W_out, index_t p) {
  constexpr const char* op = "unembed_fourier_norms";
  if (W_U.rank() != 2 || W_out.rank() != 2 || W_U.dim(0) != W_out.dim(0))
    throw Error(op,
                "needs W_U [d_model, d_vocab] and W_out [d_model, d_mlp] with the same "
                "d_model, got " +
                    W_U.shape().to_string() + " and " + W_out.shape().to_string());
  return fourier_norms(Tensor<T>::from_matrix(W_U.matrix().transpose() * W_out.matrix()), p);
}

// Gini coefficient of non-negative values: sorted ascending x_1 <= ... <= x_n,
// G = sum_i (2i - n - 1) x_i / (n sum_i x_i). A one-hot profile gives 1 - 1/n, a flat one 0;
// an all-zero profile gives 0 (nothing is concentrated).
template <class Range>
double gini(const Range& values) {
  std::vector<double> x;
  for (const auto& v : values) {
    const double d = static_cast<double>(v);
    if (!(d >= 0) || !std::isfinite(d))
      throw Error("gini", "values must be finite and >= 0, entry " + std::to_string(x.size()) +
                              " is " + std::to_string(d));
    x.push_back(d);
  }
  if (x.empty()) throw Error("gini", "no values");
  std::sort(x.begin(), x.end());
  const double n = static_cast<double>(x.size());
  double sum = 0, weighted = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sum += x[i];
    weighted += (2.0 * static_cast<double>(i + 1) - n - 1.0) * x[i];
  }
  return sum > 0 ? weighted / (n * sum) : 0.0;
}

// Key frequencies of a profile (entry k is frequency k; 0 is the constant): those whose
// norm exceeds `fraction` of the largest norm, strongest first (ties: lower frequency).
template <Scalar T>
std::vector<index_t> key_frequencies(const Tensor<T>& profile, double fraction = 0.5) {
  constexpr const char* op = "key_frequencies";
  if (!(fraction >= 0 && fraction <= 1))
    throw Error(op, "fraction must be in [0, 1], got " + std::to_string(fraction));
  if (profile.numel() < 1) throw Error(op, "empty profile");
  T top = 0;
  for (T v : profile) top = std::max(top, v);
  std::vector<index_t> keys;
  for (index_t k = 0; k < profile.numel(); ++k)
    if (profile.data()[k] > static_cast<T>(fraction) * top) keys.push_back(k);
  std::stable_sort(keys.begin(), keys.end(),
                   [&](index_t a, index_t b) { return profile.data()[a] > profile.data()[b]; });
  return keys;
}

// The `count` strongest frequencies, strongest first (ties: lower frequency); all of them
// when the profile has fewer.
template <Scalar T>
std::vector<index_t> top_frequencies(const Tensor<T>& profile, index_t count) {
  if (count < 0) throw Error("top_frequencies", "count must be >= 0, got " + std::to_string(count));
  std::vector<index_t> keys(static_cast<std::size_t>(profile.numel()));
  for (index_t k = 0; k < profile.numel(); ++k) keys[k] = k;
  std::stable_sort(keys.begin(), keys.end(),
                   [&](index_t a, index_t b) { return profile.data()[a] > profile.data()[b]; });
  keys.resize(std::min<std::size_t>(keys.size(), static_cast<std::size_t>(count)));
  return keys;
}

}  // namespace grokalign::metrics
