#pragma once
// L-infinity adversarial attacks and robust accuracy: PGD (Madry et al.) and APGD-CE (Croce
// and Hein, ICML 2020, Algorithm 1) on the per-sample cross-entropy of a classifier.
//
// Both use the engine's input gradients: every iteration wraps the current inputs in a
// fresh Var that requires grad, runs the model once, and takes one backward pass from the
// logits to the input with the cotangent softmax - onehot (the gradient of the summed
// per-sample cross-entropy, so each sample's step is independent of the batch size). The
// graph dies with the iteration; nothing is kept across iterations, so an iteration costs
// one forward and one backward pass and no more. Points are only evaluated (forward, no
// graph) where no gradient is needed: the clean input and the last iterate.
//
// Returned per sample is the worst case seen over all iterations and restarts, including
// the clean input itself: a misclassified point beats a correctly classified one, and
// among points of the same status the higher loss wins. So the result is never weaker than
// the clean input (and its loss is never lower than the clean loss unless the attack made
// the sample misclassified, which for two classes implies a higher loss too).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "grokalign/core/error.hpp"
#include "grokalign/core/random.hpp"
#include "grokalign/core/tensor.hpp"
#include "grokalign/ops/layout.hpp"
#include "grokalign/reverse/engine.hpp"
#include "grokalign/reverse/grad_mode.hpp"
#include "grokalign/reverse/var.hpp"

namespace grokalign::metrics {

enum class AttackKind { kPgd, kApgdCe };

struct AttackOptions {
  double eps = 8.0 / 255.0;  // L-infinity radius
  double lo = 0.0;           // valid input range [lo, hi]; the clean input must lie in it
  double hi = 1.0;
  int steps = 100;           // gradient evaluations (iterations) per restart
  int restarts = 1;          // runs from fresh random starts (only with random_start)
  bool random_start = true;  // start uniformly in the eps-ball (else at the clean input)
  double alpha = 0.0;        // PGD's step; 0 means 2.5 * eps / steps. APGD ignores it.
  AttackKind kind = AttackKind::kApgdCe;  // the attack robust_accuracy runs
  index_t batch = 256;                    // robust_accuracy's rows per attack
  // false: a clean input may lie outside [lo, hi], and every candidate is still clamped to
  // it. That is what AutoAttack does to inputs normalised before the call (their box [0, 1]
  // is then not the data's), offered to match code that attacks so.
  bool require_clean_in_range = true;
};

template <Scalar T>
struct AttackResult {
  Tensor<T> x_adv;                          // same shape as the input
  Tensor<T> loss;                           // [B] cross-entropy at x_adv
  std::vector<std::uint8_t> correct;        // [B] x_adv still classified correctly
  std::vector<std::uint8_t> clean_correct;  // [B] the clean input classified correctly
  double accuracy() const {
    index_t n = 0;
    for (auto c : correct) n += c;
    return correct.empty() ? 0.0 : static_cast<double>(n) / static_cast<double>(correct.size());
  }
};

struct RobustAccuracy {
  double clean = 0.0;
  double robust = 0.0;
};

namespace detail {

[[noreturn]] inline void attack_error(const char* op, const std::string& what) {
  throw Error(op, what);
}

inline void check_attack_options(const char* op, const AttackOptions& o) {
  if (!std::isfinite(o.eps) || o.eps < 0)
    attack_error(op, "eps must be finite and >= 0, got " + std::to_string(o.eps));
  if (!(o.lo < o.hi))
    attack_error(op, "the valid range needs lo < hi, got lo = " + std::to_string(o.lo) +
                         ", hi = " + std::to_string(o.hi));
  if (o.steps < 1) attack_error(op, "steps must be at least 1, got " + std::to_string(o.steps));
  if (o.restarts < 1)
    attack_error(op, "restarts must be at least 1, got " + std::to_string(o.restarts));
  if (!std::isfinite(o.alpha) || o.alpha < 0)
    attack_error(
        op, "alpha must be finite and >= 0 (0: 2.5 * eps / steps), got " + std::to_string(o.alpha));
}

template <Scalar T>
void check_attack_inputs(const char* op, const Tensor<T>& x, const Indices& labels,
                         const AttackOptions& o) {
  check_attack_options(op, o);
  if (x.rank() < 1 || x.dim(0) < 1)
    attack_error(op, "input must have a batch axis with at least one row, got shape " +
                         x.shape().to_string());
  if (labels.size() != x.dim(0))
    attack_error(op, std::to_string(labels.size()) + " labels for " + std::to_string(x.dim(0)) +
                         " rows of input");
  for (index_t i = 0; i < x.numel(); ++i) {
    const T v = x.data()[i];
    if (!std::isfinite(static_cast<double>(v)))
      attack_error(
          op, "input entry " + std::to_string(i) + " = " + std::to_string(v) + " is not finite");
    if (o.require_clean_in_range && !(v >= o.lo && v <= o.hi))
      attack_error(op, "input entry " + std::to_string(i) + " = " + std::to_string(v) +
                           " lies outside the valid range [" + std::to_string(o.lo) + ", " +
                           std::to_string(o.hi) + "]");
  }
}

// Per-sample cross-entropy and correctness from logits [B, C]; when `cotangent` is given
// it receives softmax - onehot, the gradient of the summed cross-entropy in the logits.
template <Scalar T>
void cross_entropy_rows(const char* op, const Tensor<T>& logits, const Indices& y, T* loss,
                        std::uint8_t* correct, Tensor<T>* cotangent) {
  const index_t B = y.size();
  if (logits.rank() != 2 || logits.dim(0) != B || logits.dim(1) < 1)
    attack_error(op, "the model must map a batch of " + std::to_string(B) + " inputs to logits [" +
                         std::to_string(B) + ", C], got " + logits.shape().to_string());
  const index_t C = logits.dim(1);
  if (cotangent) *cotangent = Tensor<T>::empty(logits.shape());
  for (index_t b = 0; b < B; ++b) {
    const T* z = logits.data() + b * C;
    const index_t label = y[b];
    if (label < 0 || label >= C)
      attack_error(op, "label " + std::to_string(label) + " of row " + std::to_string(b) +
                           " outside [0, " + std::to_string(C) + ")");
    index_t arg = 0;
    for (index_t c = 1; c < C; ++c)
      if (z[c] > z[arg]) arg = c;
    const T m = z[arg];
    T s = 0;
    for (index_t c = 0; c < C; ++c) s += std::exp(z[c] - m);
    loss[b] = m + std::log(s) - z[label];
    correct[b] = arg == label;
    if (cotangent) {
      T* g = cotangent->data() + b * C;
      for (index_t c = 0; c < C; ++c) g[c] = std::exp(z[c] - m) / s;
      g[label] -= T(1);
    }
  }
}

// Forward pass only, no graph: losses and correctness at x.
template <Scalar T, class Model>
void evaluate_ce(const char* op, Model& model, const Tensor<T>& x, const Indices& y, T* loss,
                 std::uint8_t* correct) {
  NoGradGuard no_graph;
  const Var<T> logits = model(Var<T>(x));
  cross_entropy_rows<T>(op, logits.value(), y, loss, correct, nullptr);
}

// One forward and one backward pass: losses, correctness, and the gradient in x of the
// summed per-sample cross-entropy, written into `g` (x's shape).
template <Scalar T, class Model>
void ce_and_grad(const char* op, Model& model, const Tensor<T>& x, const Indices& y, T* loss,
                 std::uint8_t* correct, Tensor<T>& g) {
  GradModeGuard record(true);
  const Var<T> xv(x, true);
  const Var<T> logits = model(xv);
  Tensor<T> cot;
  cross_entropy_rows<T>(op, logits.value(), y, loss, correct, &cot);
  if (!logits.requires_grad()) {  // the model ignores its input: a zero gradient
    g.fill(T(0));
    return;
  }
  const Var<T> gx = grad<T>(logits, xv, Var<T>(cot), {.allow_unused = true});
  if (gx.defined())
    g.copy_from(gx.value());
  else
    g.fill(T(0));
}

// The worst case per sample so far: misclassified beats correct, then the higher loss.
template <Scalar T>
struct WorstCase {
  Tensor<T> x;
  std::vector<T> loss;
  std::vector<std::uint8_t> correct;
  index_t d = 0;

  void offer(const Tensor<T>& cand, const T* cand_loss, const std::uint8_t* cand_correct) {
    const index_t B = static_cast<index_t>(loss.size());
    for (index_t b = 0; b < B; ++b) {
      const bool better = (!cand_correct[b] && correct[b]) ||
                          (cand_correct[b] == correct[b] && cand_loss[b] > loss[b]);
      if (!better) continue;
      loss[b] = cand_loss[b];
      correct[b] = cand_correct[b];
      std::memcpy(x.data() + b * d, cand.data() + b * d, sizeof(T) * d);
    }
  }
};

// Projection onto the eps-ball around the clean input intersected with [lo, hi].
template <Scalar T>
struct Box {
  const T* x0;
  T eps, lo, hi;
  T operator()(index_t i, T v) const {
    v = std::min(std::max(v, x0[i] - eps), x0[i] + eps);
    return std::min(std::max(v, lo), hi);
  }
};

template <Scalar T>
T sign_of(T g) {
  return static_cast<T>((g > 0) - (g < 0));
}

template <Scalar T>
Tensor<T> start_point(const Tensor<T>& x0, const Box<T>& box, bool random, Generator& gen) {
  Tensor<T> x = x0.clone();
  if (random)
    for (index_t i = 0; i < x.numel(); ++i)
      x.data()[i] = box(i, x0.data()[i] + static_cast<T>(gen.uniform(-1.0, 1.0)) * box.eps);
  return x;
}

// One PGD run: `steps` gradient steps of size alpha along the gradient's sign.
template <Scalar T, class Model>
void pgd_run(const char* op, Model& model, const Tensor<T>& x0, const Indices& y,
             const AttackOptions& o, Generator& gen, WorstCase<T>& worst) {
  const index_t B = y.size(), n = x0.numel();
  const Box<T> box{x0.data(), static_cast<T>(o.eps), static_cast<T>(o.lo), static_cast<T>(o.hi)};
  const T alpha = static_cast<T>(o.alpha > 0 ? o.alpha : 2.5 * o.eps / o.steps);
  Tensor<T> x = start_point(x0, box, o.random_start, gen);
  Tensor<T> g = Tensor<T>::empty(x0.shape());
  std::vector<T> loss(B);
  std::vector<std::uint8_t> correct(B);
  for (int k = 0; k < o.steps; ++k) {
    ce_and_grad(op, model, x, y, loss.data(), correct.data(), g);
    worst.offer(x, loss.data(), correct.data());
    for (index_t i = 0; i < n; ++i)
      x.data()[i] = box(i, x.data()[i] + alpha * sign_of(g.data()[i]));
  }
  evaluate_ce(op, model, x, y, loss.data(), correct.data());
  worst.offer(x, loss.data(), correct.data());
}

// APGD's checkpoints w_j = ceil(p_j * N) for p_0 = 0, p_1 = 0.22,
// p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), kept where 0 < w_j < N (a check at N
// would have no iteration left to use it). p is held in hundredths so it is exact.
inline std::vector<int> apgd_checkpoints(int N) {
  std::vector<int> w;
  long prev = 0, cur = 22;
  while (cur <= 100) {
    const int wj = static_cast<int>((cur * N + 99) / 100);
    if (wj > 0 && wj < N && (w.empty() || wj > w.back())) w.push_back(wj);
    const long next = cur + std::max(cur - prev - 3, 6L);
    prev = cur;
    cur = next;
  }
  return w;
}

// One APGD-CE run (Croce and Hein 2020, Algorithm 1, L-infinity), per-sample step sizes.
template <Scalar T, class Model>
void apgd_run(const char* op, Model& model, const Tensor<T>& x0, const Indices& y,
              const AttackOptions& o, Generator& gen, WorstCase<T>& worst) {
  const index_t B = y.size(), n = x0.numel(), d = n / B;
  const int N = o.steps;
  const Box<T> box{x0.data(), static_cast<T>(o.eps), static_cast<T>(o.lo), static_cast<T>(o.hi)};
  const T rho = T(0.75), momentum = T(0.75);
  std::vector<char> is_check(static_cast<std::size_t>(N) + 1, 0);
  for (int w : apgd_checkpoints(N)) is_check[w] = 1;

  Tensor<T> x = start_point(x0, box, o.random_start, gen);
  Tensor<T> g = Tensor<T>::empty(x0.shape());
  std::vector<T> f(B);
  std::vector<std::uint8_t> correct(B);
  ce_and_grad(op, model, x, y, f.data(), correct.data(), g);
  worst.offer(x, f.data(), correct.data());

  std::vector<T> eta(B, static_cast<T>(2 * o.eps));
  std::vector<T> f_max = f, f_prev = f, f_max_at_check = f;
  Tensor<T> x_max = x.clone(), g_max = g.clone(), x_prev = x.clone();
  std::vector<int> increases(B, 0);
  std::vector<std::uint8_t> reduced_at_check(B, 0);
  int last_check = 0;

  for (int k = 0; k < N; ++k) {
    // x^(k+1) from x^(k): a projected sign step z, then momentum towards z (alpha = 1 on the
    // first step, which has no previous iterate).
    const T a = k == 0 ? T(1) : momentum;
    for (index_t b = 0; b < B; ++b) {
      const T step = eta[b];
      for (index_t i = b * d; i < (b + 1) * d; ++i) {
        const T xi = x.data()[i];
        const T z = box(i, xi + step * sign_of(g.data()[i]));
        x.data()[i] = box(i, xi + a * (z - xi) + (T(1) - a) * (xi - x_prev.data()[i]));
        x_prev.data()[i] = xi;
      }
    }
    if (k + 1 == N) {  // the last iterate needs its loss only
      evaluate_ce(op, model, x, y, f.data(), correct.data());
      worst.offer(x, f.data(), correct.data());
      break;
    }
    ce_and_grad(op, model, x, y, f.data(), correct.data(), g);
    worst.offer(x, f.data(), correct.data());
    for (index_t b = 0; b < B; ++b) {
      increases[b] += f[b] > f_prev[b];
      f_prev[b] = f[b];
      if (f[b] > f_max[b]) {
        f_max[b] = f[b];
        std::memcpy(x_max.data() + b * d, x.data() + b * d, sizeof(T) * d);
        std::memcpy(g_max.data() + b * d, g.data() + b * d, sizeof(T) * d);
      }
    }
    if (!is_check[k + 1]) continue;
    // Checkpoint w_j = k + 1: halve the step and restart from the best point when
    // (1) fewer than rho * (w_j - w_{j-1}) of the steps since w_{j-1} increased the loss, or
    // (2) the step was not halved at w_{j-1} and the best loss has not improved since.
    const int interval = k + 1 - last_check;
    last_check = k + 1;
    for (index_t b = 0; b < B; ++b) {
      const bool cond1 = static_cast<T>(increases[b]) < rho * static_cast<T>(interval);
      const bool cond2 = !reduced_at_check[b] && !(f_max[b] > f_max_at_check[b]);
      const bool reduce = cond1 || cond2;
      if (reduce) {
        eta[b] /= T(2);
        std::memcpy(x.data() + b * d, x_max.data() + b * d, sizeof(T) * d);
        std::memcpy(g.data() + b * d, g_max.data() + b * d, sizeof(T) * d);
        f_prev[b] = f_max[b];
      }
      reduced_at_check[b] = reduce;
      f_max_at_check[b] = f_max[b];
      increases[b] = 0;
    }
  }
}

template <Scalar T>
Tensor<T> gather_rows(const Tensor<T>& t, const std::vector<index_t>& rows, index_t d) {
  Shape s = t.shape();
  s[0] = static_cast<index_t>(rows.size());
  Tensor<T> out = Tensor<T>::empty(s);
  for (std::size_t r = 0; r < rows.size(); ++r)
    std::memcpy(out.data() + r * d, t.data() + rows[r] * d, sizeof(T) * d);
  return out;
}

// Runs `run` from the clean input over every restart, each restart only on the samples
// not yet misclassified (as AutoAttack does: a fooled sample stays fooled).
template <Scalar T, class Model, class Run>
AttackResult<T> attack(const char* op, Model& model, const Tensor<T>& x, const Indices& y,
                       const AttackOptions& o, Run&& run) {
  check_attack_inputs(op, x, y, o);
  const index_t B = x.dim(0), d = x.numel() / B;
  WorstCase<T> worst{x.clone(), std::vector<T>(B), std::vector<std::uint8_t>(B), d};
  evaluate_ce(op, model, x, y, worst.loss.data(), worst.correct.data());
  AttackResult<T> result;
  result.clean_correct = worst.correct;

  const int restarts = o.random_start ? o.restarts : 1;  // without randomness they repeat
  for (int r = 0; r < restarts; ++r) {
    std::vector<index_t> live;
    for (index_t b = 0; b < B; ++b)
      if (worst.correct[b]) live.push_back(b);
    if (live.empty()) break;
    const index_t m = static_cast<index_t>(live.size());
    std::vector<index_t> labels(m);
    for (index_t i = 0; i < m; ++i) labels[i] = y[live[i]];
    const Indices y_sub(labels);
    const Tensor<T> x_sub = gather_rows(x, live, d);
    WorstCase<T> sub{gather_rows(worst.x, live, d), std::vector<T>(m), std::vector<std::uint8_t>(m),
                     d};
    for (index_t i = 0; i < m; ++i) {
      sub.loss[i] = worst.loss[live[i]];
      sub.correct[i] = worst.correct[live[i]];
    }
    run(x_sub, y_sub, sub);
    for (index_t i = 0; i < m; ++i) {
      const index_t b = live[i];
      worst.loss[b] = sub.loss[i];
      worst.correct[b] = sub.correct[i];
      std::memcpy(worst.x.data() + b * d, sub.x.data() + i * d, sizeof(T) * d);
    }
  }
  result.x_adv = worst.x;
  result.loss = Tensor<T>::from(Shape{B}, worst.loss);
  result.correct = std::move(worst.correct);
  return result;
}

}  // namespace detail

// PGD under an L-infinity budget: from the clean input (or a uniform random point of the
// eps-ball), `steps` iterations x <- P(x + alpha * sign(grad_x CE)), P the projection onto
// the eps-ball intersected with [lo, hi]. `model` maps a Var [B, ...] to logits [B, C].
template <Scalar T, class Model>
AttackResult<T> pgd(Model&& model, const Tensor<T>& x, const Indices& labels,
                    const AttackOptions& options, Generator& gen) {
  constexpr const char* op = "pgd";
  return detail::attack(op, model, x, labels, options,
                        [&](const Tensor<T>& xs, const Indices& ys, detail::WorstCase<T>& w) {
                          detail::pgd_run(op, model, xs, ys, options, gen, w);
                        });
}
template <Scalar T, class Model>
AttackResult<T> pgd(Model&& model, const Tensor<T>& x, const std::vector<index_t>& labels,
                    const AttackOptions& options, Generator& gen) {
  return pgd(model, x, Indices(labels), options, gen);
}

// APGD-CE (Croce and Hein, ICML 2020, Algorithm 1): step size 2 eps per sample, momentum
// 0.75, halved at the checkpoints on conditions 1 and 2 with a restart from the sample's
// best point; `steps` iterations (N_iter), `restarts` random restarts.
template <Scalar T, class Model>
AttackResult<T> apgd_ce(Model&& model, const Tensor<T>& x, const Indices& labels,
                        const AttackOptions& options, Generator& gen) {
  constexpr const char* op = "apgd_ce";
  return detail::attack(op, model, x, labels, options,
                        [&](const Tensor<T>& xs, const Indices& ys, detail::WorstCase<T>& w) {
                          detail::apgd_run(op, model, xs, ys, options, gen, w);
                        });
}
template <Scalar T, class Model>
AttackResult<T> apgd_ce(Model&& model, const Tensor<T>& x, const std::vector<index_t>& labels,
                        const AttackOptions& options, Generator& gen) {
  return apgd_ce(model, x, Indices(labels), options, gen);
}

// Clean and robust accuracy over a data set, attacking `options.batch` rows at a time
// with `options.kind`.
template <Scalar T, class Model>
RobustAccuracy robust_accuracy(Model&& model, const Tensor<T>& x, const Indices& labels,
                               const AttackOptions& options, Generator& gen) {
  constexpr const char* op = "robust_accuracy";
  detail::check_attack_options(op, options);
  if (options.batch < 1)
    detail::attack_error(op, "batch must be at least 1, got " + std::to_string(options.batch));
  if (x.rank() < 1 || x.dim(0) < 1)
    detail::attack_error(op,
                         "input must have at least one row, got shape " + x.shape().to_string());
  if (labels.size() != x.dim(0))
    detail::attack_error(op, std::to_string(labels.size()) + " labels for " +
                                 std::to_string(x.dim(0)) + " rows of input");
  const index_t N = x.dim(0);
  index_t clean = 0, robust = 0;
  for (index_t start = 0; start < N; start += options.batch) {
    const index_t n = std::min(options.batch, N - start);
    std::vector<index_t> ys(n);
    for (index_t i = 0; i < n; ++i) ys[i] = labels[start + i];
    const Tensor<T> xs = x.rows(start, n);
    const AttackResult<T> r = options.kind == AttackKind::kPgd
                                  ? pgd(model, xs, Indices(ys), options, gen)
                                  : apgd_ce(model, xs, Indices(ys), options, gen);
    for (index_t i = 0; i < n; ++i) {
      clean += r.clean_correct[i];
      robust += r.correct[i];
    }
  }
  return {static_cast<double>(clean) / static_cast<double>(N),
          static_cast<double>(robust) / static_cast<double>(N)};
}
template <Scalar T, class Model>
RobustAccuracy robust_accuracy(Model&& model, const Tensor<T>& x,
                               const std::vector<index_t>& labels, const AttackOptions& options,
                               Generator& gen) {
  return robust_accuracy(model, x, Indices(labels), options, gen);
}

}  // namespace grokalign::metrics
