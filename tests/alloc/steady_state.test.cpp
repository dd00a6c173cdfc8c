// A steady-state training step performs no heap allocation, proven with a counter that sees
// every malloc-family call of the process (heap_counter.cpp): the paper's MNIST MLP step,
// plain and GrokAlign, in float64 and float32, on one and two OpenMP threads, a step on the
// batches and labels of a BatchIterator with cross_entropy, and the GrokAlign steps of the
// CNN and the transformer.
//
// "Steady state" means after a few warm-up steps: the first steps fill the block cache,
// the engine's per-thread scratch and the GEMM packing buffers, which later steps reuse.
#include <catch2/catch.hpp>
#include <grokalign/grokalign.hpp>
#include <grokalign/nn.hpp>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "heap_counter.hpp"

namespace ga = grokalign;
using ga::index_t;

namespace {

constexpr int kWarmupSteps = 3;
constexpr int kCountedSteps = 3;

// Restores the OpenMP thread count on scope exit.
class ThreadCount {
 public:
  explicit ThreadCount(int n) {
#if defined(_OPENMP)
    saved_ = omp_get_max_threads();
    omp_set_num_threads(n);
#else
    (void)n;
#endif
  }
  ~ThreadCount() {
#if defined(_OPENMP)
    omp_set_num_threads(saved_);
#endif
  }

 private:
  int saved_ = 1;
};

template <class T>
void update(const ga::Var<T>& loss, const std::vector<ga::Var<T>>& params, ga::Optimizer<T>& opt) {
  opt.zero_grad(/*set_to_none=*/true);
  loss.backward(params);
  opt.step();
}

// Allocations made by `kCountedSteps` calls of `step` after `kWarmupSteps` uncounted ones.
template <class Step>
long steady_state_allocations(Step&& step) {
  for (int i = 0; i < kWarmupSteps; ++i) step();
  heap_counter::Scope counter;
  for (int i = 0; i < kCountedSteps; ++i) step();
  return counter.count();
}

template <class T>
ga::Tensor<T> one_hot_rows(index_t batch, index_t classes) {
  ga::Tensor<T> t = ga::Tensor<T>::zeros(ga::Shape{batch, classes});
  for (index_t b = 0; b < batch; ++b) t.data()[b * classes + b % classes] = T(1);
  return t;
}

// One training step of a dense classifier as in the paper's recipe: forward, MSE on one-hot
// targets, optionally lambda times the GrokAlign penalty, backward, AdamW.
template <class T, class Model>
long dense_step_allocations(Model& model, const ga::Tensor<T>& x, index_t classes, double lambda,
                            bool align) {
  ga::Generator gen(1);
  const ga::Tensor<T> target = one_hot_rows<T>(x.shape()[0], classes);
  const auto params = model.trainable_parameters();
  ga::AdamW<T> opt(params, {.lr = 1e-3, .weight_decay = 1e-2});
  return steady_state_allocations([&] {
    const ga::Var<T> xv(x, align);
    const ga::Var<T> out = model(xv);
    ga::Var<T> loss = ga::mse(out, target);
    if (align) loss = loss + ga::align::grokalign_penalty_from(out, xv, gen) * T(lambda);
    update(loss, params, opt);
  });
}

template <class T>
long mnist_mlp_step_allocations(bool align) {
  ga::Generator gen(0);
  auto mlp = ga::nn::make_mlp<T>(784, 196, 4, 10, false, gen);
  ga::nn::scale_parameters(mlp, 8.0);
  const ga::Tensor<T> x = ga::randn<T>(ga::Shape{256, 784}, gen);
  return dense_step_allocations<T>(mlp, x, 10, 1e-4, align);
}

// A step as a user's program writes it: the next batch of a BatchIterator, cross-entropy
// against the iterator's std::vector labels as they are (no Indices made per step),
// optionally plus the GrokAlign penalty. 64 samples in batches of 16, so the counted steps
// cross an epoch boundary (a fresh permutation).
template <class T>
long batch_iterator_ce_step_allocations(bool align) {
  ga::Generator gen(0);
  auto mlp = ga::nn::make_mlp<T>(20, 32, 2, 4, false, gen);
  const index_t n = 64;
  const ga::Tensor<T> x = ga::randn<T>(ga::Shape{n, 20}, gen);
  std::vector<index_t> labels(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) labels[static_cast<std::size_t>(i)] = (i * 7) % 4;
  ga::BatchIterator<T> batches(x, labels, {.batch_size = 16}, gen);
  const auto params = mlp.trainable_parameters();
  ga::AdamW<T> opt(params, {.lr = 1e-3, .weight_decay = 1e-2});
  return steady_state_allocations([&] {
    batches.next();
    const ga::Var<T> xv(batches.inputs(), align);
    const ga::Var<T> out = mlp(xv);
    ga::Var<T> loss = ga::cross_entropy(out, batches.labels());
    if (align) loss = loss + ga::align::grokalign_penalty_from(out, xv, gen) * T(1e-3);
    update(loss, params, opt);
  });
}

}  // namespace

TEST_CASE("the heap counter sees allocations on every path and thread", "[alloc]") {
  heap_counter::Scope counter;
  std::vector<double> v(1000, 1.0);
  Eigen::MatrixXd m = Eigen::MatrixXd::Ones(100, 100);
  ga::Tensor<double> big = ga::Tensor<double>::zeros(ga::Shape{1 << 20});  // past the block cache
  int parallel_allocations = 0;
#if defined(_OPENMP)
  ThreadCount two(2);
#pragma omp parallel reduction(+ : parallel_allocations)
  {
    std::vector<int> w(100, omp_get_thread_num());
    parallel_allocations += w[0] >= 0 ? 1 : 0;
  }
#endif
  const long n = counter.count();
  CHECK(v[0] + m(0, 0) + big.numel() > 0);
  CHECK(n >= 3 + parallel_allocations);
}

TEST_CASE("a steady-state MNIST MLP training step allocates nothing", "[alloc][optim]") {
  const int threads = GENERATE(1, 2);
  ThreadCount use(threads);
  INFO("OpenMP threads: " << threads);
  CHECK(mnist_mlp_step_allocations<double>(false) == 0);
  CHECK(mnist_mlp_step_allocations<double>(true) == 0);
  CHECK(mnist_mlp_step_allocations<float>(false) == 0);
  CHECK(mnist_mlp_step_allocations<float>(true) == 0);
}

TEST_CASE("a steady-state step on BatchIterator labels with cross_entropy allocates nothing",
          "[alloc][optim][data]") {
  const int threads = GENERATE(1, 2);
  ThreadCount use(threads);
  INFO("OpenMP threads: " << threads);
  CHECK(batch_iterator_ce_step_allocations<double>(false) == 0);
  CHECK(batch_iterator_ce_step_allocations<double>(true) == 0);
  CHECK(batch_iterator_ce_step_allocations<float>(false) == 0);
  CHECK(batch_iterator_ce_step_allocations<float>(true) == 0);
}

TEST_CASE("a steady-state GrokAlign step of the CNN allocates nothing", "[alloc][optim]") {
  const int threads = GENERATE(1, 2);
  ThreadCount use(threads);
  INFO("OpenMP threads: " << threads);
  ga::Generator gen(0);
  auto cnn = ga::nn::make_cnn<float>(3, 32, 10, gen);
  const ga::Tensor<float> x = ga::randn<float>(ga::Shape{16, 3, 32, 32}, gen);
  CHECK(dense_step_allocations<float>(cnn, x, 10, 1e-3, true) == 0);
}

TEST_CASE("a steady-state GrokAlign step of the transformer allocates nothing", "[alloc][optim]") {
  const int threads = GENERATE(1, 2);
  ThreadCount use(threads);
  INFO("OpenMP threads: " << threads);
  ga::nn::TransformerConfig cfg;
  ga::Generator gen(0);
  auto model = ga::nn::make_transformer<double>(cfg, gen);
  const index_t batch = 64;
  std::vector<index_t> tok, lab;
  for (index_t i = 0; i < batch; ++i) {
    const index_t a = (i * 37) % cfg.p, b = (i * 91 + 5) % cfg.p;
    tok.insert(tok.end(), {a, b, cfg.p});
    lab.push_back((a + b) % cfg.p);
  }
  const ga::Indices tokens(tok, ga::Shape{batch, 3});
  const ga::Tensor<double> target = ga::one_hot<double>(ga::Indices(lab), cfg.d_vocab());
  const auto params = model.trainable_parameters();
  ga::AdamW<double> opt(params, {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.98, .weight_decay = 1.0});
  const long n = steady_state_allocations([&] {
    const ga::Var<double> e = model.embed(tokens);
    const ga::Var<double> logits = model.from_embedding(e);
    const ga::Var<double> loss = ga::cross_entropy(logits, target) +
                                 ga::align::grokalign_penalty_from(logits, e, gen) * 1e-3;
    update(loss, params, opt);
  });
  CHECK(n == 0);
}
