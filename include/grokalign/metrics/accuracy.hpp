#pragma once
// Accuracy of a model's outputs by the three decision rules the experiments use: argmax of
// logits against class labels, the sign of a scalar output against +-1 targets, and the
// sigmoid threshold (logit > 0 iff sigmoid > 0.5) against 0/1 labels. Each rule is offered
// on outputs already computed and on a model evaluated over a data set in chunks of rows,
// without recording a graph (Tensor evaluation computes values only), optionally with
// Gaussian noise added to a range of input coordinates (the XOR run's robustness check).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "grokalign/core/error.hpp"
#include "grokalign/core/random.hpp"
#include "grokalign/core/tensor.hpp"
#include "grokalign/ops/apply.hpp"
#include "grokalign/ops/layout.hpp"
#include "grokalign/reverse/grad_mode.hpp"
#include "grokalign/reverse/var.hpp"

namespace grokalign::metrics {

// Gaussian noise of standard deviation `sigma` added to coordinates [begin, end) of every
// sample (each sample flattened to d numbers; end = -1 means d).
struct NoiseOptions {
  double sigma = 0.0;
  index_t begin = 0;
  index_t end = -1;
};

inline constexpr index_t kDefaultEvalBatch = 1024;

namespace detail {

[[noreturn]] inline void fail(const char* op, const std::string& what) {
  throw Error(op, what);
}

inline void check_count(const char* op, const char* what, index_t count, index_t rows) {
  if (count != rows)
    fail(op,
         std::to_string(count) + " " + what + " for " + std::to_string(rows) + " rows of input");
}

// Number of samples N of an output [N] or [N, 1] (scalar-output rules).
template <Scalar T>
index_t scalar_rows(const char* op, const Tensor<T>& out) {
  if (out.rank() == 1) return out.dim(0);
  if (out.rank() == 2 && out.dim(1) == 1) return out.dim(0);
  detail::fail(op, "outputs must be [N] or [N, 1], got " + out.shape().to_string());
}

template <Scalar T>
void check_values_in(const char* op, const char* what, const Tensor<T>& t, T a, T b) {
  for (index_t i = 0; i < t.numel(); ++i) {
    const T v = t.data()[i];
    if (v != a && v != b)
      fail(op, std::string(what) + " must be " + std::to_string(static_cast<int>(a)) + " or " +
                   std::to_string(static_cast<int>(b)) + ", entry " + std::to_string(i) + " is " +
                   std::to_string(v));
  }
}

// Correct predictions among the rows of `logits` [n, C] against labels[offset + i].
template <Scalar T>
index_t count_argmax(const char* op, const Tensor<T>& logits, const Indices& labels,
                     index_t offset) {
  if (logits.rank() != 2 || logits.dim(1) < 1)
    fail(op, "logits must be [N, C], got " + logits.shape().to_string());
  const index_t n = logits.dim(0), C = logits.dim(1);
  index_t correct = 0;
  for (index_t i = 0; i < n; ++i) {
    const T* row = logits.data() + i * C;
    index_t best = 0;  // the first maximum, as torch.argmax
    for (index_t c = 1; c < C; ++c)
      if (row[c] > row[best]) best = c;
    const index_t y = labels[offset + i];
    if (y < 0 || y >= C)
      fail(op, "label " + std::to_string(y) + " of row " + std::to_string(offset + i) +
                   " outside [0, " + std::to_string(C) + ")");
    correct += best == y;
  }
  return correct;
}

// Correct signs: output * target > 0 (an output of exactly 0 counts as wrong).
template <Scalar T>
index_t count_sign(const Tensor<T>& out, const Tensor<T>& targets, index_t offset) {
  index_t correct = 0;
  for (index_t i = 0; i < out.numel(); ++i)
    correct += out.data()[i] * targets.data()[offset + i] > 0;
  return correct;
}

// Correct thresholds: (logit > 0) == (label == 1).
template <Scalar T>
index_t count_sigmoid(const Tensor<T>& out, const Tensor<T>& labels, index_t offset) {
  index_t correct = 0;
  for (index_t i = 0; i < out.numel(); ++i)
    correct += (out.data()[i] > 0) == (labels.data()[offset + i] == T(1));
  return correct;
}

// The model's outputs on x, values only: a Tensor evaluation when the model takes one
// (modules and generic lambdas), else a Var evaluation; no graph is recorded either way.
template <Scalar T, class Model>
Tensor<T> evaluate(Model& model, const Tensor<T>& x) {
  NoGradGuard no_graph;
  if constexpr (std::is_invocable_v<Model&, const Tensor<T>&>) {
    const auto out = model(x);
    return value_of(out);
  } else {
    return model(Var<T>(x)).value();
  }
}

// Adds N(0, sigma^2) noise to coordinates [begin, end) of every row of `x` (in place), row by
// row, so the draws do not depend on how a data set is cut into chunks.
template <Scalar T>
void add_noise_rows(Tensor<T>& x, const NoiseOptions& noise, Generator& gen) {
  const index_t n = x.dim(0), d = n ? x.numel() / n : 0;
  const index_t end = noise.end < 0 ? d : noise.end;
  for (index_t i = 0; i < n; ++i)
    for (index_t j = noise.begin; j < end; ++j)
      x.data()[i * d + j] += static_cast<T>(noise.sigma * gen.normal());
}

template <Scalar T>
void check_noise(const char* op, const Tensor<T>& x, const NoiseOptions& noise) {
  if (!std::isfinite(noise.sigma) || noise.sigma < 0)
    fail(op, "noise sigma must be finite and >= 0, got " + std::to_string(noise.sigma));
  const index_t d = x.dim(0) ? x.numel() / x.dim(0) : 0;
  const index_t end = noise.end < 0 ? d : noise.end;
  if (noise.begin < 0 || noise.begin > end || end > d)
    fail(op, "noise coordinates [" + std::to_string(noise.begin) + ", " + std::to_string(end) +
                 ") outside the " + std::to_string(d) + " coordinates of a sample");
}

// Fraction of rows of x the model gets right, evaluated `batch` rows at a time; `count`
// maps (outputs of a chunk, first row of the chunk) to the number correct. With `noise`,
// each chunk is copied and perturbed before evaluation.
template <Scalar T, class Model, class Count>
double chunked_accuracy(const char* op, Model& model, const Tensor<T>& x, index_t batch,
                        const NoiseOptions* noise, Generator* gen, Count&& count) {
  if (x.rank() < 1 || x.dim(0) < 1)
    fail(op, "input must have at least one row, got shape " + x.shape().to_string());
  if (batch < 1) fail(op, "batch must be at least 1, got " + std::to_string(batch));
  if (noise) check_noise(op, x, *noise);
  const index_t N = x.dim(0);
  index_t correct = 0;
  Tensor<T> noisy;
  for (index_t start = 0; start < N; start += batch) {
    const index_t n = std::min(batch, N - start);
    Tensor<T> chunk = x.rows(start, n);
    if (noise) {
      if (!noisy.defined() || noisy.dim(0) != n) noisy = Tensor<T>::empty(chunk.shape());
      noisy.copy_from(chunk);
      add_noise_rows(noisy, *noise, *gen);
      chunk = noisy;
    }
    const Tensor<T> out = evaluate(model, chunk);
    if (out.rank() < 1 || out.dim(0) != n)
      fail(op, "model output " + out.shape().to_string() + " for an input chunk of " +
                   std::to_string(n) + " rows");
    correct += count(out, start);
  }
  return static_cast<double>(correct) / static_cast<double>(N);
}

template <Scalar T>
void check_pm1_targets(const char* op, const Tensor<T>& targets, index_t rows) {
  check_count(op, "targets", targets.numel(), rows);
  check_values_in(op, "targets", targets, T(-1), T(1));
}
template <Scalar T>
void check_01_labels(const char* op, const Tensor<T>& labels, index_t rows) {
  check_count(op, "labels", labels.numel(), rows);
  check_values_in(op, "labels", labels, T(0), T(1));
}

}  // namespace detail

// Adds the noise the noisy_*_accuracy metrics add, drawn the same way (row by row, from
// `gen`): for a caller that evaluates only some rows itself (a data-parallel rank its
// block) but must draw what the whole set draws, so that every sample gets the numbers it
// gets in one process and the generator advances alike everywhere.
template <Scalar T>
void add_noise(Tensor<T>& x, const NoiseOptions& noise, Generator& gen) {
  detail::check_noise("add_noise", x, noise);
  detail::add_noise_rows(x, noise, gen);
}

// ---- Outputs already computed ----------------------------------------------------------

// Fraction of rows of logits [N, C] whose argmax (the first maximum) is the label.
template <Scalar T>
double argmax_accuracy(const Tensor<T>& logits, const Indices& labels) {
  constexpr const char* op = "argmax_accuracy";
  if (logits.rank() != 2 || logits.dim(0) < 1)
    detail::fail(op, "logits must be [N, C] with N >= 1, got " + logits.shape().to_string());
  detail::check_count(op, "labels", labels.size(), logits.dim(0));
  return static_cast<double>(detail::count_argmax(op, logits, labels, 0)) /
         static_cast<double>(logits.dim(0));
}
template <Scalar T>
double argmax_accuracy(const Tensor<T>& logits, const std::vector<index_t>& labels) {
  return argmax_accuracy(logits, Indices(labels));
}

// Fraction of outputs [N] or [N, 1] whose sign matches a +-1 target (output * target > 0).
template <Scalar T>
double sign_accuracy(const Tensor<T>& outputs, const Tensor<T>& targets) {
  constexpr const char* op = "sign_accuracy";
  const index_t N = detail::scalar_rows(op, outputs);
  if (N < 1) detail::fail(op, "no outputs");
  detail::check_pm1_targets(op, targets, N);
  return static_cast<double>(detail::count_sign(outputs, targets, 0)) / static_cast<double>(N);
}

// Fraction of logits [N] or [N, 1] with (logit > 0) == (label == 1), labels 0 or 1.
template <Scalar T>
double sigmoid_accuracy(const Tensor<T>& logits, const Tensor<T>& labels) {
  constexpr const char* op = "sigmoid_accuracy";
  const index_t N = detail::scalar_rows(op, logits);
  if (N < 1) detail::fail(op, "no outputs");
  detail::check_01_labels(op, labels, N);
  return static_cast<double>(detail::count_sigmoid(logits, labels, 0)) / static_cast<double>(N);
}

// ---- A model over a data set, `batch` rows at a time, no graph --------------------------
// `model` maps [n, ...] to outputs with n rows: a module, or a callable on Tensor<T> (or on
// Var<T>, evaluated with recording off).

template <Scalar T, class Model>
double accuracy(Model&& model, const Tensor<T>& x, const Indices& labels,
                index_t batch = kDefaultEvalBatch) {
  constexpr const char* op = "accuracy";
  if (x.rank() >= 1) detail::check_count(op, "labels", labels.size(), x.dim(0));
  return detail::chunked_accuracy(op, model, x, batch, nullptr, nullptr,
                                  [&](const Tensor<T>& out, index_t start) {
                                    return detail::count_argmax(op, out, labels, start);
                                  });
}
template <Scalar T, class Model>
double accuracy(Model&& model, const Tensor<T>& x, const std::vector<index_t>& labels,
                index_t batch = kDefaultEvalBatch) {
  return accuracy(model, x, Indices(labels), batch);
}

template <Scalar T, class Model>
double sign_accuracy(Model&& model, const Tensor<T>& x, const Tensor<T>& targets,
                     index_t batch = kDefaultEvalBatch) {
  constexpr const char* op = "sign_accuracy";
  if (x.rank() >= 1) detail::check_pm1_targets(op, targets, x.dim(0));
  return detail::chunked_accuracy(op, model, x, batch, nullptr, nullptr,
                                  [&](const Tensor<T>& out, index_t start) {
                                    detail::scalar_rows(op, out);
                                    return detail::count_sign(out, targets, start);
                                  });
}

template <Scalar T, class Model>
double sigmoid_accuracy(Model&& model, const Tensor<T>& x, const Tensor<T>& labels,
                        index_t batch = kDefaultEvalBatch) {
  constexpr const char* op = "sigmoid_accuracy";
  if (x.rank() >= 1) detail::check_01_labels(op, labels, x.dim(0));
  return detail::chunked_accuracy(op, model, x, batch, nullptr, nullptr,
                                  [&](const Tensor<T>& out, index_t start) {
                                    detail::scalar_rows(op, out);
                                    return detail::count_sigmoid(out, labels, start);
                                  });
}

// ---- The same under Gaussian input noise on coordinates [begin, end) --------------------
// Noise is drawn from `gen` row by row in data-set order, so a seed gives the same result
// for every batch size.

template <Scalar T, class Model>
double noisy_accuracy(Model&& model, const Tensor<T>& x, const Indices& labels,
                      const NoiseOptions& noise, Generator& gen,
                      index_t batch = kDefaultEvalBatch) {
  constexpr const char* op = "noisy_accuracy";
  if (x.rank() >= 1) detail::check_count(op, "labels", labels.size(), x.dim(0));
  return detail::chunked_accuracy(op, model, x, batch, &noise, &gen,
                                  [&](const Tensor<T>& out, index_t start) {
                                    return detail::count_argmax(op, out, labels, start);
                                  });
}

template <Scalar T, class Model>
double noisy_sign_accuracy(Model&& model, const Tensor<T>& x, const Tensor<T>& targets,
                           const NoiseOptions& noise, Generator& gen,
                           index_t batch = kDefaultEvalBatch) {
  constexpr const char* op = "noisy_sign_accuracy";
  if (x.rank() >= 1) detail::check_pm1_targets(op, targets, x.dim(0));
  return detail::chunked_accuracy(op, model, x, batch, &noise, &gen,
                                  [&](const Tensor<T>& out, index_t start) {
                                    detail::scalar_rows(op, out);
                                    return detail::count_sign(out, targets, start);
                                  });
}

template <Scalar T, class Model>
double noisy_sigmoid_accuracy(Model&& model, const Tensor<T>& x, const Tensor<T>& labels,
                              const NoiseOptions& noise, Generator& gen,
                              index_t batch = kDefaultEvalBatch) {
  constexpr const char* op = "noisy_sigmoid_accuracy";
  if (x.rank() >= 1) detail::check_01_labels(op, labels, x.dim(0));
  return detail::chunked_accuracy(op, model, x, batch, &noise, &gen,
                                  [&](const Tensor<T>& out, index_t start) {
                                    detail::scalar_rows(op, out);
                                    return detail::count_sigmoid(out, labels, start);
                                  });
}

}  // namespace grokalign::metrics
