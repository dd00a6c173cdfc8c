// What is safe across threads (docs/engine.md, "Threads"), tested here in the unit suite and
// again under ThreadSanitizer (CMakeLists.txt in this folder, label tsan, run by
// scripts/test): separate models trained on separate threads, and one model whose
// parameters are only read (centroids) from several threads. And the misuse the engine
// detects: two passes over one graph at once.
#include <catch2/catch.hpp>
#include <grokalign/align.hpp>
#include <grokalign/grokalign.hpp>
#include <grokalign/nn.hpp>
#include <grokalign/optim.hpp>
#include <mutex>
#include <thread>
#include <vector>

using namespace grokalign;

namespace {

// A few GrokAlign steps of a fresh MLP; returns its weights. Everything it touches is its
// own: the model, the optimiser, the generators.
std::vector<Tensor<double>> train(std::uint64_t seed, int steps) {
  Generator init(seed), data(seed + 1), proj(seed + 2);
  auto model = nn::make_mlp<double>(6, 8, 3, 3, false, init);
  AdamW<double> opt(model.trainable_parameters(), {.lr = 0.01, .weight_decay = 0.01});
  for (int step = 0; step < steps; ++step) {
    const Var<double> x(randn<double>({8, 6}, data), true);
    const Tensor<double> y = randn<double>({8, 3}, data);
    const Var<double> out = model(x);
    const Var<double> loss = mse(out, y) + align::grokalign_penalty_from(out, x, proj) * 1e-2;
    opt.zero_grad(true);
    loss.backward(opt.parameters());
    opt.step();
  }
  std::vector<Tensor<double>> w;
  for (const auto& [name, p] : model.named_parameters()) w.push_back(p.value().clone());
  return w;
}

bool same(const Tensor<double>& a, const Tensor<double>& b) {
  return a.shape() == b.shape() && a.matrix() == b.matrix();
}

}  // namespace

TEST_CASE("two threads train two models, each as it would alone", "[concurrency]") {
  const auto alone_a = train(1, 20), alone_b = train(2, 20);
  std::vector<Tensor<double>> a, b;
  std::thread ta([&] { a = train(1, 20); });
  std::thread tb([&] { b = train(2, 20); });
  ta.join();
  tb.join();
  REQUIRE(a.size() == alone_a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(same(a[i], alone_a[i]));
    CHECK(same(b[i], alone_b[i]));
  }
}

TEST_CASE("two threads take centroids of one model, reading its parameters", "[concurrency]") {
  Generator gen(5);
  auto model = nn::make_mlp<double>(6, 8, 3, 3, true, gen);
  const Tensor<double> x1 = randn<double>({16, 6}, gen), x2 = randn<double>({16, 6}, gen);
  const auto alone1 = align::centroids(model, x1), alone2 = align::centroids(model, x2);
  align::CentroidStats<double> c1, c2;
  auto work = [&](const Tensor<double>& x, align::CentroidStats<double>& out) {
    for (int i = 0; i < 10; ++i) out = align::centroids(model, x);
  };
  std::thread t1(work, std::cref(x1), std::ref(c1));
  std::thread t2(work, std::cref(x2), std::ref(c2));
  t1.join();
  t2.join();
  CHECK(same(c1.centroid, alone1.centroid));
  CHECK(same(c2.centroid, alone2.centroid));
  CHECK(same(c1.alignment, alone1.alignment));
}

TEST_CASE("a graph another thread is walking is refused, then usable again",
          "[concurrency][errors]") {
  const Var<double> x(Tensor<double>::from({2, 2}, {1, 2, 3, 4}), true);
  const Var<double> loss = sum(tanh(x) * x);
  // What the engine sees while another thread's pass holds the graph: its claim on a node.
  detail::Node<double>* root = loss.node();
  REQUIRE(root != nullptr);
  root->walker.store(12345);  // no thread's token is an odd small number
  CHECK_THROWS_AS(grad<double>({loss}, {x}), AutodiffError);
  CHECK_THROWS_WITH(grad<double>({loss}, {x}),
                    Catch::Contains("another thread") && Catch::Contains("grad"));
  root->walker.store(0);
  // The refused pass left nothing behind: the graph differentiates normally.
  const auto g = grad<double>({loss}, {x});
  CHECK(g[0].value().numel() == 4);
  CHECK(root->walker.load() == 0);
}

TEST_CASE("two threads differentiating one graph: one of them may be refused, none corrupts",
          "[concurrency]") {
  // Whichever thread comes second while the first is walking gets an AutodiffError; a pass
  // that ran got the right answer. (Before the claim moved into the walk, the second
  // thread's walk restamped the first one's nodes and about one pass in five came out wrong.)
  const Var<double> x(Tensor<double>::from({2, 2}, {1, 2, 3, 4}), true);
  const Var<double> loss = sum(tanh(x) * x);
  const Tensor<double> expected = grad<double>({loss}, {x})[0].value();
  int refused = 0, wrong = 0;
  std::mutex m;
  auto work = [&] {
    for (int i = 0; i < 200; ++i) {
      try {
        const auto g = grad<double>({loss}, {x})[0].value();
        if (!same(g, expected)) {
          std::lock_guard<std::mutex> lock(m);
          ++wrong;
        }
      } catch (const AutodiffError&) {
        std::lock_guard<std::mutex> lock(m);
        ++refused;
      }
    }
  };
  // Under ThreadSanitizer too: a pass claims each node before it reads or writes its
  // scratch, so the refused thread never touches what the walking thread uses.
  std::thread t1(work), t2(work);
  t1.join();
  t2.join();
  INFO(refused << " of 400 passes refused");
  CHECK(wrong == 0);
}
