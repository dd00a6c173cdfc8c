// Training steps per CPU second of the paper's MNIST MLP (784-196-196-196-10, bias-free,
// init x8), batch 256, float64 (or float32 with `f32`), one thread: MSE on one-hot targets plus
// 1e-4 times the GrokAlign penalty (one projection), AdamW. CPU time (std::clock) rather than wall
// time, so that other processes on a shared machine do not count against the program.
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <grokalign/grokalign.hpp>
#include <string>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif
namespace ga = grokalign;

template <class T>
double steps_per_cpu_second(int steps) {
  ga::Generator gen(0);
  auto mlp = ga::nn::make_mlp<T>(784, 196, 4, 10, false, gen);
  ga::nn::scale_parameters(mlp, 8.0);
  const auto params = mlp.trainable_parameters();
  ga::AdamW<T> opt(params, {.lr = 1e-3, .weight_decay = 1e-2});
  const auto batch = ga::randn<T>({256, 784}, gen);
  std::vector<ga::index_t> labels(256);
  for (auto& l : labels) l = static_cast<ga::index_t>(gen.below(10));
  const auto target = ga::one_hot<T>(ga::Indices(labels), 10);

  auto step = [&] {
    const ga::Var<T> x(batch, true);
    const ga::Var<T> out = mlp(x);
    const ga::Var<T> loss =
        ga::mse(out, target) + ga::align::grokalign_penalty_from(out, x, gen) * 1e-4;
    opt.zero_grad(true);
    loss.backward(params);
    opt.step();
  };
  for (int i = 0; i < 3; ++i) step();  // warm the memory cache
  const std::clock_t c0 = std::clock();
  for (int i = 0; i < steps; ++i) step();
  return steps / (static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC);
}

// step_speed [steps] [f64|f32]
int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 50;
  const bool f32 = argc > 2 && std::string(argv[2]) == "f32";
#ifdef _OPENMP
  omp_set_num_threads(1);
#endif
  Eigen::setNbThreads(1);
  const double rate =
      f32 ? steps_per_cpu_second<float>(steps) : steps_per_cpu_second<double>(steps);
#if defined(__AVX512F__)
  const char* isa = "AVX-512";
#elif defined(__AVX2__) && defined(__FMA__)
  const char* isa = "AVX2+FMA";
#else
  const char* isa = "SSE2";
#endif
  std::printf("%s %s: %.1f steps per CPU second (%d steps)\n", isa, f32 ? "f32" : "f64", rate,
              steps);
  return 0;
}
