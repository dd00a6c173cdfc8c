// What the engine costs over hand-derived Eigen on the paper's MNIST MLP
// (784-196-196-196-10, bias-free, batch 256, init scale 8): a plain step (forward, MSE,
// weight gradients) and a GrokAlign step (adds lambda * penalty with one projection).
// Compare engine/* with hand/* of the same type and step within one run.
#include <benchmark/benchmark.h>

#include "mlp_reference.hpp"

namespace {

using grokalign::bench::MlpProblem;

template <class T>
MlpProblem<T>& problem() {
  static MlpProblem<T> p({784, 196, 196, 196, 10}, 256, T(8), T(1e-4));
  return p;
}

template <class T>
void engine_step(benchmark::State& state, bool align) {
  auto& p = problem<T>();
  std::vector<grokalign::Var<T>> w;
  for (const auto& t : p.weights) w.emplace_back(t.clone(), true);
  for (auto _ : state) {
    const auto loss = grokalign::bench::engine_objective(p, w, align);
    auto g = grokalign::grad<T>({loss}, w);
    benchmark::DoNotOptimize(g[0].value().data());
  }
}

template <class T>
void hand_step(benchmark::State& state, bool align) {
  grokalign::bench::HandDerivedMlp<T> mlp(problem<T>());
  for (auto _ : state) benchmark::DoNotOptimize(mlp.step(align));
}

void register_all() {
  benchmark::RegisterBenchmark("mlp_step/f64/engine_plain", engine_step<double>, false);
  benchmark::RegisterBenchmark("mlp_step/f64/hand_plain", hand_step<double>, false);
  benchmark::RegisterBenchmark("mlp_step/f64/engine_grokalign", engine_step<double>, true);
  benchmark::RegisterBenchmark("mlp_step/f64/hand_grokalign", hand_step<double>, true);
  benchmark::RegisterBenchmark("mlp_step/f32/engine_plain", engine_step<float>, false);
  benchmark::RegisterBenchmark("mlp_step/f32/hand_plain", hand_step<float>, false);
  benchmark::RegisterBenchmark("mlp_step/f32/engine_grokalign", engine_step<float>, true);
  benchmark::RegisterBenchmark("mlp_step/f32/hand_grokalign", hand_step<float>, true);
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
