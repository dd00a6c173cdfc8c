// Losses and norms: mse, cross_entropy (class indices and soft targets), bce_with_logits,
// row_sq_norm, row_norm, and a 2-layer tanh MLP trained with cross-entropy. Values against
// hand-worked numbers (including logits of +-1000, where naive formulas overflow) and loop
// references; the full harness on each.
#include <cmath>
#include <type_traits>
#include <vector>

#include "op_check.hpp"

using namespace op_check;

namespace {

// Rows of softmax(normal) as soft targets: non-negative, each summing to one.
Tensor soft_targets(const Shape& s, Generator& gen) {
  return softmax(normal(s, gen), -1);
}

// log-sum-exp of row r of a [n, c] tensor.
double row_lse(const Tensor& z, index_t r) {
  const index_t c = z.shape()[1];
  double mx = z.at(r, 0), total = 0;
  for (index_t j = 1; j < c; ++j) mx = std::max(mx, z.at(r, j));
  for (index_t j = 0; j < c; ++j) total += std::exp(z.at(r, j) - mx);
  return mx + std::log(total);
}

// Calls body(std::type_identity<Tensor>{}) only when Ok. The body is a generic lambda, so
// nothing in it is instantiated otherwise: while a library defect makes an expression
// ill-formed, the CHECK stating that it should compile fails, and the rest of the test
// binary still builds.
template <bool Ok, class Body>
void run_if(Body body) {
  if constexpr (Ok) body(std::type_identity<Tensor>{});
}

}  // namespace

// mse must be callable with every Differentiable type, plain tensors included: the harness
// (and any value-only evaluation) calls it with X = Tensor.
template <class Prediction, class Target>
concept MseCallable = requires(const Prediction& p, const Target& t) {
  mse(p, t);
};

TEST_CASE("mse between two differentiable tensors", OP_TAGS("[loss]")) {
  CHECK(MseCallable<Tensor, Tensor>);
  CHECK(MseCallable<Var, Var>);
  CHECK(MseCallable<DualT, DualT>);
  run_if<MseCallable<Tensor, Tensor>>([](auto type) {
    using Tn = typename decltype(type)::type;
    const auto f = [](const auto& x) { return mse(x[0], x[1]); };
    require_value(f, {Tn(tensor({3}, {1, 2, 3})), Tn(tensor({3}, {0, 2, 5}))},
                  Tensor::scalar(5.0 / 3));
    Generator gen(6001);
    const Tn p = normal({2, 3}, gen), t = normal({2, 3}, gen);
    double expected = 0;
    for (index_t i = 0; i < 6; ++i) expected += std::pow(p.data()[i] - t.data()[i], 2) / 6;
    require_value(f, {p, t}, Tensor::scalar(expected), 1e-13, 1e-15);
    require_gradcheck(f, {p, t});
  });
}

TEST_CASE("mse against a constant target", OP_TAGS("[loss]")) {
  CHECK(MseCallable<Tensor, Tensor>);
  CHECK(MseCallable<Var, Tensor>);
  CHECK(MseCallable<DualT, Tensor>);
  run_if<MseCallable<Tensor, Tensor>>([](auto type) {
    using Tn = typename decltype(type)::type;
    Generator gen(6002);
    const Tn target = normal({2, 3}, gen);
    const auto f = [target](const auto& x) { return mse(x[0], target); };
    require_value(
        [](const auto& x) {
          return mse(x[0], Tn(tensor({2}, {1, -1})));
        },
        {tensor({2}, {0, 1})}, Tensor::scalar(2.5));
    require_gradcheck(f, {normal({2, 3}, gen)});
  });
}

TEST_CASE("cross_entropy with class indices, finite for logits of +-1000", OP_TAGS("[loss]")) {
  const Tensor huge = tensor({2, 3}, {1000, 0, -1000, 1, 2, 3});
  // Row 0: -log_softmax([1000, 0, -1000]) = [0, 1000, 2000]; row 1: -log_softmax([1, 2, 3]).
  require_value(
      [](const auto& x) {
        return cross_entropy(x[0], Indices({0, 2}));
      },
      {huge}, Tensor::scalar(0.20380298222219015), 1e-14, 0);
  require_value(
      [](const auto& x) {
        return cross_entropy(x[0], Indices({1, 2}));
      },
      {huge}, Tensor::scalar(500.2038029822222), 1e-14, 0);
  require_value([](const auto& x) { return cross_entropy(x[0], Indices({2})); },
                {tensor({1, 3}, {1000, 0, -1000})}, Tensor::scalar(2000), 1e-14, 0);
  // Its gradient at the huge logits is finite: (softmax - one_hot) / batch.
  const Var z(huge, true);
  const auto g = grokalign::grad<double>({cross_entropy(z, Indices({1, 2}))}, {z});
  require_close(g[0].value(),
                tensor({2, 3}, {0.5, -0.5, 0, 0.09003057317038046 / 2, 0.24472847105479767 / 2,
                                (0.6652409557748219 - 1) / 2}),
                1e-13, 1e-300);

  const Indices labels({2, 0, 1, 2});
  const auto f = [labels](const auto& x) { return cross_entropy(x[0], labels); };
  Generator gen(6003);
  const Tensor logits = normal({4, 3}, gen);
  double expected = 0;
  for (index_t r = 0; r < 4; ++r) expected += (row_lse(logits, r) - logits.at(r, labels[r])) / 4;
  require_value(f, {logits}, Tensor::scalar(expected), 1e-13, 1e-15);
  require_gradcheck(f, {logits});
}

TEST_CASE("cross_entropy and one_hot take BatchIterator's std::vector labels as Indices",
          OP_TAGS("[loss]")) {
  const std::vector<index_t> labels = {2, 0, 1, 2};
  const Indices as_indices(labels);
  CHECK(grokalign::one_hot<double>(labels, 3).to_vector() ==
        grokalign::one_hot<double>(as_indices, 3).to_vector());

  Generator gen(6010);
  const Tensor logits = normal({4, 3}, gen);
  // The vector form has the Indices form's value and passes the full harness.
  const Tensor expected = cross_entropy(logits, as_indices);
  const auto f = [&labels](const auto& x) { return cross_entropy(x[0], labels); };
  require_value(f, {logits}, expected, 1e-15, 0);
  require_gradcheck(f, {logits});
  // ... and the Indices form's gradient, exactly.
  const Var z(logits, true);
  const auto g_vector = grokalign::grad<double>({cross_entropy(z, labels)}, {z});
  const auto g_indices = grokalign::grad<double>({cross_entropy(z, as_indices)}, {z});
  CHECK(g_vector[0].value().to_vector() == g_indices[0].value().to_vector());

  // The labels a BatchIterator hands out go in as they are (no conversion in the loop).
  Generator shuffle(6011);
  grokalign::BatchIterator<double> batches(logits, labels, {.batch_size = 3}, shuffle);
  batches.next();
  const Tensor batch_logits = batches.inputs();
  const Indices batch_indices(batches.labels());
  CHECK(cross_entropy(batch_logits, batches.labels()).item() ==
        cross_entropy(batch_logits, batch_indices).item());

  // A bad label from a vector is refused with the sample it belongs to.
  const std::vector<index_t> bad = {0, 3, 1, 2};
  CHECK_THROWS_AS(cross_entropy(logits, bad), grokalign::ShapeError);
  CHECK_THROWS_WITH(cross_entropy(logits, bad),
                    Catch::Matchers::Contains("label 3 of sample 1 is outside [0, 3)"));
  CHECK_THROWS_WITH(cross_entropy(logits, std::vector<index_t>{0, 1}),
                    Catch::Matchers::Contains("logits of shape [4, 3] for 2 labels"));
}

TEST_CASE("cross_entropy with soft targets", OP_TAGS("[loss]")) {
  require_value(
      [](const auto& x) {
        return cross_entropy(x[0], tensor({1, 3}, {0.2, 0.3, 0.5}));
      },
      {tensor({1, 3}, {1, 2, 3})}, Tensor::scalar(1.10760596444438), 1e-14, 0);
  Generator gen(6004);
  const Tensor targets = soft_targets({3, 4}, gen);
  const auto f = [targets](const auto& x) { return cross_entropy(x[0], targets); };
  const Tensor logits = normal({3, 4}, gen);
  double expected = 0;
  for (index_t r = 0; r < 3; ++r)
    for (index_t j = 0; j < 4; ++j)
      expected -= targets.at(r, j) * (logits.at(r, j) - row_lse(logits, r)) / 3;
  require_value(f, {logits}, Tensor::scalar(expected), 1e-13, 1e-15);
  require_gradcheck(f, {logits});
}

TEST_CASE("bce_with_logits, stable for large logits", OP_TAGS("[loss]")) {
  // mean(softplus(z) - y z) over z = [0, 2, -1], y = [1, 0, 1].
  require_value(
      [](const auto& x) {
        return bce_with_logits(x[0], tensor({3}, {1, 0, 1}));
      },
      {tensor({3}, {0, 2, -1})}, Tensor::scalar(1.3777789597070471), 1e-14, 0);
  // Confidently right: ~e^-100; confidently wrong: 100 per entry.
  const Tensor z = tensor({2}, {100, -100});
  const Tensor right = [&] { return bce_with_logits(z, tensor({2}, {1, 0})); }();
  CHECK(std::isfinite(right.item()));
  CHECK(right.item() >= 0);
  CHECK(right.item() < 1e-40);
  require_value(
      [](const auto& x) {
        return bce_with_logits(x[0], tensor({2}, {0, 1}));
      },
      {z}, Tensor::scalar(100), 1e-14, 0);

  Generator gen(6005);
  const Tensor targets = uniform({2, 3}, gen, 0.0, 1.0);
  const auto f = [targets](const auto& x) { return bce_with_logits(x[0], targets); };
  const Tensor logits = normal({2, 3}, gen, 2.0);
  double expected = 0;
  for (index_t i = 0; i < 6; ++i) {
    const double zi = logits.data()[i], yi = targets.data()[i];
    const double p = 1.0 / (1.0 + std::exp(-zi));
    expected -= (yi * std::log(p) + (1 - yi) * std::log(1 - p)) / 6;
  }
  require_value(f, {logits}, Tensor::scalar(expected), 1e-12, 1e-14);
  require_gradcheck(f, {logits});
}

TEST_CASE("row_sq_norm over the last axis", OP_TAGS("[loss]")) {
  const auto f = [](const auto& x) { return row_sq_norm(x[0]); };
  require_value(f, {tensor({2, 2}, {3, 4, 1, 2})}, tensor({2}, {25, 5}));
  Generator gen(6006);
  const Tensor x = normal({2, 2, 3}, gen);
  Tensor expected = Tensor::zeros({2, 2});
  for (index_t i = 0; i < 12; ++i) expected.data()[i / 3] += x.data()[i] * x.data()[i];
  require_value(f, {x}, expected, 1e-14, 1e-15);
  require_gradcheck(f, {x});
}

TEST_CASE("row_norm over the last axis (rows away from zero)", OP_TAGS("[loss]")) {
  const auto f = [](const auto& x) { return row_norm(x[0]); };
  require_value(f, {tensor({2, 2}, {3, 4, 1, 2})}, tensor({2}, {5, 2.23606797749979}), 1e-15, 0);
  Generator gen(6007);
  const Tensor x = normal({3, 4}, gen);
  Tensor expected = Tensor::zeros({3});
  for (index_t r = 0; r < 3; ++r) {
    double s = 0;
    for (index_t j = 0; j < 4; ++j) s += x.at(r, j) * x.at(r, j);
    expected.data()[r] = std::sqrt(s);
  }
  require_value(f, {x}, expected, 1e-14, 1e-15);
  require_gradcheck(f, {x});
}

TEST_CASE("composition: 2-layer tanh MLP with cross-entropy", OP_TAGS("[loss][composition]")) {
  const Indices labels({0, 2, 1, 2});
  // inputs: x [4,3], W1 [5,3], b1 [5], W2 [3,5], b2 [3]
  const auto logits = [](const auto& p) {
    return linear(tanh(linear(p[0], p[1], p[2])), p[3], p[4]);
  };
  const auto loss = [labels, logits](const auto& p) { return cross_entropy(logits(p), labels); };

  Generator gen(6101);
  const std::vector<Tensor> params{normal({4, 3}, gen), normal({5, 3}, gen), normal({5}, gen),
                                   normal({3, 5}, gen), normal({3}, gen)};
  // Reference forward pass by loops.
  Tensor out = Tensor::zeros({4, 3});
  for (index_t n = 0; n < 4; ++n) {
    double h[5];
    for (index_t j = 0; j < 5; ++j) {
      double s = params[2].data()[j];
      for (index_t i = 0; i < 3; ++i) s += params[0].at(n, i) * params[1].at(j, i);
      h[j] = std::tanh(s);
    }
    for (index_t c = 0; c < 3; ++c) {
      double s = params[4].data()[c];
      for (index_t j = 0; j < 5; ++j) s += h[j] * params[3].at(c, j);
      out.at(n, c) = s;
    }
  }
  double expected = 0;
  for (index_t n = 0; n < 4; ++n) expected += (row_lse(out, n) - out.at(n, labels[n])) / 4;
  require_value(logits, params, out, 1e-13, 1e-14);
  require_value(loss, params, Tensor::scalar(expected), 1e-13, 1e-15);
  require_gradcheck(logits, params);
  require_gradcheck(loss, params);
}

TEST_CASE("cross_entropy names itself and the sample for an out-of-range label",
          "[ops][loss][errors]") {
  const Tensor logits = Tensor::zeros({3, 4});
  CHECK_THROWS_WITH(cross_entropy(logits, Indices({0, 4, 1})),
                    Catch::Contains("cross_entropy") && Catch::Contains("label 4 of sample 1") &&
                        Catch::Contains("[0, 4)"));
  CHECK_THROWS_AS(cross_entropy(Var(logits, true), Indices({0, 1, -1})), grokalign::ShapeError);
}
