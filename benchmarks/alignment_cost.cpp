// What a GrokAlign training step costs compared with a plain one, on the paper's models.
//
// Every */plain_step benchmark is one full training step: forward, task loss, weight
// gradients, optimiser update. Every */grokalign_step adds lambda times the GrokAlign
// penalty with one random output projection (J^T v with create_graph, then one reverse
// pass over everything). The alignment penalties (align/alignment_penalty.hpp,
// align/jacobian_alignment.hpp), with the same lambda, replace it in:
//   */centroid_align_step      mean_b (1 - A_b), A_b the cosine of J^T 1 and x_b (one
//                              recorded VJP)
//   */jacobian_align_step      mean_b (1 - JA_b) from the training pass, one output projection:
//                              one recorded VJP and J x by a reverse pass over it
//   */jacobian_align_fwd_step  the same through the model: J x by a forward pass on duals,
//                              then one recorded VJP on its primal (the task loss keeps its
//                              own forward pass) Models, optimisers and inputs are built before the
//                              timed loop;
// the loop holds only what a training loop repeats each step (the graph is rebuilt every
// step, as in PyTorch).
//
//   mnist_mlp[_bB]/T/...   bias-free ReLU MLP 784-196-196-196-10, init x8, MSE on one-hot,
//                          AdamW (lr 1e-3, wd 1e-2), lambda 1e-4; batch 256 unless _bB
//   mnist_mlp/T/grokalign_step_direct  the GrokAlign step with J^T v formed at the input
//                          (the others let the penalty choose the cheaper form of the
//                          first layer: PenaltyOptions::first_product)
//   mlp_depthD/T/...       the same with D Linear layers (width 196), batch 256
//   mnist_mlp/T/centroids  centroids and alignment of 64 samples; .../pc1: PC1 of 64 samples
//   cnn28, cnn32/T/...     the delayed-robustness CNN on 28x28x1 / 32x32x3, batch 64, MSE,
//                          AdamW (lr 1e-3, wd 1e-3), lambda 1e-3
//   transformer/T/...      the modular-addition transformer (p 113), 256 sequences, CE on the
//                          last position, AdamW (lr 1e-3, wd 1, betas 0.9/0.98), lambda 1e-3
//                          on the map from embeddings to last-position logits
//   xor/T/...              XOR at reduced size: p 4000, width 512, n 400, 2-layer ReLU, MSE,
//                          SGD (lr 0.1, wd 0.1), lambda 1
//   mnist_mlp/T/adamw_update  AdamW's update alone on that MLP's parameters
//   gemm/T/peak            a 1024^3 Eigen GEMM: the machine's reachable FLOP rate
//
// MLP benchmarks report FLOPS (GEMM FLOPs per step, docs/performance.md) as a rate.
#include <benchmark/benchmark.h>

#include <grokalign/grokalign.hpp>
#include <grokalign/nn.hpp>
#include <string>
#include <vector>

namespace ga = grokalign;

namespace {

using ga::index_t;

template <class T>
const char* type_name() {
  return sizeof(T) == 8 ? "f64" : "f32";
}

// FLOPs of the first layer's share of the penalty in the Gram form (k = 1).
double gram_cost(const std::vector<index_t>& n, index_t B) {
  const double n0 = double(n[0]), n1 = double(n[1]);
  return ga::kernels::gram_flops(n[1], n[0]) + 2.0 * n1 * n1 * n0 + 6.0 * double(B) * n1 * n1;
}

// GEMM FLOPs of one step of a bias-free ReLU MLP with layer sizes n0..nL (element-wise work
// ignored). Plain: forward 2BP, weight gradients 2BP, input gradients of all but the first
// layer 2B(P - n0 n1). GrokAlign adds J^T v (2BP) and the reverse pass over it: weight
// gradients of every layer and cotangents of all but the top layer, 2B(2P - n_{L-1} n_L).
// With the Gram form of the first layer (PenaltyOptions::first_product), the first layer's
// share of that, 6B n0 n1, becomes gram_flops(n1, n0) + 2 n1^2 n0 (G and its gradient;
// 3.5 n1^2 n0 for n1 >= 64) + 6B n1^2.
double mlp_flops(const std::vector<index_t>& n, index_t B, bool align, bool gram = false) {
  double P = 0;
  for (std::size_t l = 0; l + 1 < n.size(); ++l) P += double(n[l]) * double(n[l + 1]);
  const double first = double(n[0]) * double(n[1]);
  const double top = double(n[n.size() - 2]) * double(n.back());
  double f = 2.0 * double(B) * (3 * P - first);
  if (align) f += 2.0 * double(B) * (3 * P - top);
  if (align && gram) {
    const double n1 = double(n[1]), n0 = double(n[0]);
    f += gram_cost(n, B) - 6.0 * double(B) * first;
  }
  return f;
}

// Whether kAuto takes the Gram form for this MLP (the rule in align/penalty.hpp, k = 1).
bool gram_chosen(const std::vector<index_t>& n, index_t B) {
  return gram_cost(n, B) < 6.0 * double(B) * double(n[1]) * double(n[0]);
}

void set_flops(benchmark::State& state, double flops) {
  state.counters["FLOPS"] =
      benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
}

// The regulariser a step adds to its task loss.
enum class Reg { kPlain, kGrokAlign, kCentroidAlign, kJacobianAlign, kJacobianAlignForward };

Reg grokalign_if(bool align) {
  return align ? Reg::kGrokAlign : Reg::kPlain;
}

const char* step_name(Reg r) {
  switch (r) {
    case Reg::kPlain:
      return "/plain_step";
    case Reg::kGrokAlign:
      return "/grokalign_step";
    case Reg::kCentroidAlign:
      return "/centroid_align_step";
    case Reg::kJacobianAlign:
      return "/jacobian_align_step";
    case Reg::kJacobianAlignForward:
      return "/jacobian_align_fwd_step";
  }
  return "";
}

// The penalty of `reg` for the output `out` = model(x) of the step's forward pass (x requires
// grad unless reg is kPlain); undefined for kPlain.
template <class T, class Model>
ga::Var<T> penalty_of(Reg reg, Model& model, const ga::Var<T>& out, const ga::Var<T>& x,
                      ga::Generator& gen, const ga::align::PenaltyOptions& penalty) {
  switch (reg) {
    case Reg::kPlain:
      return ga::Var<T>();
    case Reg::kGrokAlign:
      return ga::align::grokalign_penalty_from(out, x, gen, penalty);
    case Reg::kCentroidAlign:
      return ga::align::centroid_alignment_penalty_from(out, x);
    case Reg::kJacobianAlign:
      return ga::align::jacobian_alignment_penalty_from(out, x, gen);
    case Reg::kJacobianAlignForward:
      return ga::align::jacobian_alignment_penalty<T>(model, x.value(), gen);
  }
  return ga::Var<T>();
}

// One optimiser step from the weight gradients of `loss`. backward(params) rather than
// backward(): the input of a GrokAlign step requires grad, and a plain backward() would also
// form its (unused) gradient.
template <class T>
void update(const ga::Var<T>& loss, const std::vector<ga::Var<T>>& params, ga::Optimizer<T>& opt) {
  opt.zero_grad(/*set_to_none=*/true);
  loss.backward(params);
  opt.step();
}

// ------------------------------------------------------------------------------------------
// Classifiers on dense inputs (MLP, CNN, XOR): MSE on one-hot targets.
// ------------------------------------------------------------------------------------------
template <class T>
struct DenseSetup {
  ga::Tensor<T> x, target;
  index_t classes;
};

template <class T>
DenseSetup<T> dense_setup(const ga::Shape& input, index_t classes, ga::Generator& gen) {
  DenseSetup<T> s{ga::randn<T>(input, gen), ga::Tensor<T>::zeros(ga::Shape{input[0], classes}),
                  classes};
  for (index_t b = 0; b < input[0]; ++b) s.target.data()[b * classes + b % classes] = T(1);
  return s;
}

template <class T, class Model>
void run_dense_step(benchmark::State& state, Model& model, const DenseSetup<T>& d,
                    ga::Optimizer<T>& opt, double lambda, Reg reg, ga::Generator& gen,
                    ga::align::PenaltyOptions penalty = {}) {
  auto params = model.trainable_parameters();
  for (auto _ : state) {
    const ga::Var<T> x(d.x, reg != Reg::kPlain);
    const ga::Var<T> out = model(x);
    ga::Var<T> loss = ga::mse(out, d.target);
    if (reg != Reg::kPlain)
      loss = loss + penalty_of<T>(reg, model, out, x, gen, penalty) * static_cast<T>(lambda);
    update(loss, params, opt);
    benchmark::DoNotOptimize(params[0].value().data());
  }
}

template <class T>
ga::nn::Sequential<T> mlp_model(const std::vector<index_t>& n, double init_scale,
                                ga::Generator& gen) {
  ga::nn::Sequential<T> mlp =
      ga::nn::make_mlp<T>(n.front(), n[1], static_cast<int>(n.size() - 1), n.back(), false, gen);
  ga::nn::scale_parameters(mlp, init_scale);
  return mlp;
}

template <class T>
void mlp_step(benchmark::State& state, std::vector<index_t> sizes, index_t batch, Reg reg,
              ga::align::FirstProduct first) {
  ga::Generator gen(0);
  auto mlp = mlp_model<T>(sizes, 8.0, gen);
  const auto d = dense_setup<T>(ga::Shape{batch, sizes.front()}, sizes.back(), gen);
  ga::AdamW<T> opt(mlp.trainable_parameters(), {.lr = 1e-3, .weight_decay = 1e-2});
  run_dense_step<T>(state, mlp, d, opt, 1e-4, reg, gen, {.first_product = first});
  if (reg != Reg::kPlain && reg != Reg::kGrokAlign) return;  // FLOPs counted for these two
  const bool align = reg == Reg::kGrokAlign;
  const bool gram = first == ga::align::FirstProduct::kGram ||
                    (first == ga::align::FirstProduct::kAuto && gram_chosen(sizes, batch));
  set_flops(state, mlp_flops(sizes, batch, align, gram));
}

template <class T>
void xor_step(benchmark::State& state, bool align) {
  const index_t p = 4000, width = 512, n = 400;
  ga::Generator gen(0);
  // Two +-1 signal coordinates, the rest +-0.05 noise; y = x1 x2.
  ga::Tensor<T> x = ga::Tensor<T>::zeros(ga::Shape{n, p}),
                y = ga::Tensor<T>::zeros(ga::Shape{n, 1});
  for (index_t i = 0; i < n; ++i) {
    for (index_t j = 0; j < p; ++j) {
      const T s = gen.uniform(0.0, 1.0) < 0.5 ? T(-1) : T(1);
      x.data()[i * p + j] = j < 2 ? s : T(0.05) * s;
    }
    y.data()[i] = x.data()[i * p] * x.data()[i * p + 1];
  }
  auto mlp = ga::nn::make_mlp<T>(p, width, 2, 1, false, gen);
  ga::SGD<T> opt(mlp.trainable_parameters(), {.lr = 0.1, .weight_decay = 0.1});
  run_dense_step<T>(state, mlp, DenseSetup<T>{x, y, 1}, opt, 1.0, grokalign_if(align), gen);
  set_flops(state, mlp_flops({p, width, 1}, n, align));
}

template <class T>
void cnn_step(benchmark::State& state, index_t channels, index_t size, Reg reg) {
  const index_t batch = 64;
  ga::Generator gen(0);
  auto cnn = ga::nn::make_cnn<T>(channels, size, 10, gen);
  const auto d = dense_setup<T>(ga::Shape{batch, channels, size, size}, 10, gen);
  ga::AdamW<T> opt(cnn.trainable_parameters(), {.lr = 1e-3, .weight_decay = 1e-3});
  run_dense_step<T>(state, cnn, d, opt, 1e-3, reg, gen);
}

// ------------------------------------------------------------------------------------------
// Transformer: tokens (a, b, =), CE on the last position's logits.
// ------------------------------------------------------------------------------------------
template <class T>
void transformer_step(benchmark::State& state, Reg reg) {
  const index_t batch = 256;
  ga::nn::TransformerConfig cfg;
  ga::Generator gen(0);
  auto model = ga::nn::make_transformer<T>(cfg, gen);
  std::vector<index_t> tok, lab;
  for (index_t i = 0; i < batch; ++i) {
    const index_t a = (i * 37) % cfg.p, b = (i * 91 + 5) % cfg.p;
    tok.insert(tok.end(), {a, b, cfg.p});
    lab.push_back((a + b) % cfg.p);
  }
  const ga::Indices tokens(tok, ga::Shape{batch, 3});
  const ga::Tensor<T> target = ga::one_hot<T>(ga::Indices(lab), cfg.d_vocab());
  ga::AdamW<T> opt(model.trainable_parameters(),
                   {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.98, .weight_decay = 1.0});
  auto params = model.trainable_parameters();
  // The map the penalties are taken on (for the forward-mode route, which evaluates it on
  // duals; there the embeddings enter as constants, so W_E gets no penalty gradient).
  auto sub_map = [&](const auto& e) { return model.from_embedding(e); };
  for (auto _ : state) {
    const ga::Var<T> e = model.embed(tokens);  // requires grad through W_E
    const ga::Var<T> logits = model.from_embedding(e);
    ga::Var<T> loss = ga::cross_entropy(logits, target);
    if (reg != Reg::kPlain) loss = loss + penalty_of<T>(reg, sub_map, logits, e, gen, {}) * T(1e-3);
    update(loss, params, opt);
    benchmark::DoNotOptimize(params[0].value().data());
  }
}

// ------------------------------------------------------------------------------------------
// Diagnostics on the MNIST MLP (64 samples).
// ------------------------------------------------------------------------------------------
template <class T>
void mlp_centroids(benchmark::State& state) {
  ga::Generator gen(0);
  auto mlp = mlp_model<T>({784, 196, 196, 196, 10}, 8.0, gen);
  const ga::Tensor<T> x = ga::randn<T>(ga::Shape{64, 784}, gen);
  for (auto _ : state) {
    auto s = ga::align::centroids<T>(mlp, x);
    benchmark::DoNotOptimize(s.alignment.data());
  }
}

template <class T>
void mlp_pc1(benchmark::State& state) {
  ga::Generator gen(0);
  auto mlp = mlp_model<T>({784, 196, 196, 196, 10}, 8.0, gen);
  const ga::Tensor<T> x = ga::randn<T>(ga::Shape{64, 784}, gen);
  for (auto _ : state) {
    auto s = ga::align::pc1<T>(mlp, x);
    benchmark::DoNotOptimize(s.mean);
  }
}

// The optimiser alone on the MNIST MLP's parameters (232,456 numbers), with fixed gradients:
// how much of a step is AdamW's element-wise update.
template <class T>
void mlp_adamw(benchmark::State& state) {
  ga::Generator gen(0);
  auto mlp = mlp_model<T>({784, 196, 196, 196, 10}, 8.0, gen);
  auto params = mlp.trainable_parameters();
  for (auto& p : params) p.set_grad(ga::randn<T>(p.shape(), gen));
  ga::AdamW<T> opt(params, {.lr = 1e-3, .weight_decay = 1e-2});
  for (auto _ : state) {
    opt.step();
    benchmark::DoNotOptimize(params[0].value().data());
  }
}

template <class T>
void gemm_peak(benchmark::State& state) {
  using M = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  const index_t n = 1024;
  const M a = M::Random(n, n), b = M::Random(n, n);
  M c(n, n);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_flops(state, 2.0 * double(n) * double(n) * double(n));
}

template <class F, class... A>
void add(const std::string& name, F f, A... args) {
  benchmark::RegisterBenchmark(name.c_str(), f, args...)->Unit(benchmark::kMillisecond);
}

template <class T>
void register_type() {
  const std::string t = type_name<T>();
  const std::vector<index_t> mnist{784, 196, 196, 196, 10};
  constexpr auto kAuto = ga::align::FirstProduct::kAuto;
  for (Reg reg : {Reg::kPlain, Reg::kGrokAlign, Reg::kCentroidAlign, Reg::kJacobianAlign,
                  Reg::kJacobianAlignForward})
    add("mnist_mlp/" + t + step_name(reg), mlp_step<T>, mnist, index_t(256), reg, kAuto);
  // The same GrokAlign step with J^T v formed at the input: what the generic double
  // backward costs, without the Gram form of the first layer.
  add("mnist_mlp/" + t + "/grokalign_step_direct", mlp_step<T>, mnist, index_t(256),
      Reg::kGrokAlign, ga::align::FirstProduct::kDirect);
  add("mnist_mlp/" + t + "/centroids", mlp_centroids<T>);
  add("mnist_mlp/" + t + "/pc1", mlp_pc1<T>);
  add("mnist_mlp/" + t + "/adamw_update", mlp_adamw<T>);
  for (index_t b : {64, 1024})
    for (bool align : {false, true})
      add("mnist_mlp_b" + std::to_string(b) + "/" + t + (align ? "/grokalign_step" : "/plain_step"),
          mlp_step<T>, mnist, b, grokalign_if(align), kAuto);
  for (int depth : {2, 3, 4, 5, 6}) {
    std::vector<index_t> sizes{784};
    for (int i = 1; i < depth; ++i) sizes.push_back(196);
    sizes.push_back(10);
    for (bool align : {false, true})
      add("mlp_depth" + std::to_string(depth) + "/" + t +
              (align ? "/grokalign_step" : "/plain_step"),
          mlp_step<T>, sizes, index_t(256), grokalign_if(align), kAuto);
  }
  for (Reg reg : {Reg::kPlain, Reg::kGrokAlign, Reg::kCentroidAlign, Reg::kJacobianAlign,
                  Reg::kJacobianAlignForward}) {
    add("cnn28/" + t + step_name(reg), cnn_step<T>, index_t(1), index_t(28), reg);
    add("cnn32/" + t + step_name(reg), cnn_step<T>, index_t(3), index_t(32), reg);
    add("transformer/" + t + step_name(reg), transformer_step<T>, reg);
  }
  for (bool align : {false, true})
    add("xor/" + t + step_name(grokalign_if(align)), xor_step<T>, align);
  add("gemm/" + t + "/peak", gemm_peak<T>);
}

}  // namespace

int main(int argc, char** argv) {
  register_type<double>();
  register_type<float>();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
