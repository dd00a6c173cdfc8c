// Matrix products: every transpose-flag combination, batched [b,m,k] x [k,n] (shared right
// operand), batched x batched, 2-D x batched, linear with and without bias, and a causal
// self-attention block built from them. References are triple loops.
#include <cmath>
#include <functional>
#include <limits>

#include "op_check.hpp"

using namespace op_check;

namespace {

// op(A) op(B) by loops. A and B are [r, c] or [batch..., r, c]; a 2-D operand is shared by
// every product of the batch.
Tensor matmul_ref(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const int ra = a.rank(), rb = b.rank();
  const index_t m = ta ? a.shape()[ra - 1] : a.shape()[ra - 2];
  const index_t k = ta ? a.shape()[ra - 2] : a.shape()[ra - 1];
  const index_t n = tb ? b.shape()[rb - 2] : b.shape()[rb - 1];
  const Tensor& batched = ra > 2 ? a : b;
  Shape out;
  for (int d = 0; d < batched.rank() - 2; ++d) out.push_back(batched.shape()[d]);
  const index_t batch = out.numel();
  out.push_back(m);
  out.push_back(n);
  Tensor c = Tensor::zeros(out);
  const index_t a_size = m * k, b_size = k * n;
  for (index_t p = 0; p < batch; ++p) {
    const double* pa = a.data() + (ra > 2 ? p * a_size : 0);
    const double* pb = b.data() + (rb > 2 ? p * b_size : 0);
    for (index_t i = 0; i < m; ++i)
      for (index_t j = 0; j < n; ++j) {
        double s = 0;
        for (index_t q = 0; q < k; ++q)
          s += (ta ? pa[q * m + i] : pa[i * k + q]) * (tb ? pb[j * k + q] : pb[q * n + j]);
        c.data()[p * m * n + i * n + j] = s;
      }
  }
  return c;
}

// Value against the loop reference, then the harness, for op(A) op(B) at random operands.
void check_matmul(const Shape& sa, const Shape& sb, bool ta, bool tb, std::uint64_t seed) {
  const auto f = [ta, tb](const auto& x) { return matmul(x[0], x[1], ta, tb); };
  Generator gen(seed);
  const Tensor a = normal(sa, gen), b = normal(sb, gen);
  require_value(f, {a, b}, matmul_ref(a, b, ta, tb), 1e-13, 1e-14);
  require_gradcheck(f, {a, b});
}

// P = [[1, 2], [3, 4]] and Q = [[5, 6], [7, 8]] for hand-worked products.
Tensor P() {
  return tensor({2, 2}, {1, 2, 3, 4});
}
Tensor Q() {
  return tensor({2, 2}, {5, 6, 7, 8});
}
template <bool TA, bool TB>
auto mm() {
  return [](const auto& x) { return matmul(x[0], x[1], TA, TB); };
}

}  // namespace

// ---------------------------------------------------------------------------------------
// 2-D, each transpose flag combination
// ---------------------------------------------------------------------------------------

TEST_CASE("matmul: A B", OP_TAGS("[matmul]")) {
  require_value(mm<false, false>(), {P(), Q()}, tensor({2, 2}, {19, 22, 43, 50}));
  check_matmul({3, 4}, {4, 2}, false, false, 5001);
}
TEST_CASE("matmul: A^T B", OP_TAGS("[matmul]")) {
  require_value(mm<true, false>(), {P(), Q()}, tensor({2, 2}, {26, 30, 38, 44}));
  check_matmul({4, 3}, {4, 2}, true, false, 5002);
}
TEST_CASE("matmul: A B^T", OP_TAGS("[matmul]")) {
  require_value(mm<false, true>(), {P(), Q()}, tensor({2, 2}, {17, 23, 39, 53}));
  check_matmul({3, 4}, {2, 4}, false, true, 5003);
}
TEST_CASE("matmul: A^T B^T", OP_TAGS("[matmul]")) {
  require_value(mm<true, true>(), {P(), Q()}, tensor({2, 2}, {23, 31, 34, 46}));
  check_matmul({4, 3}, {2, 4}, true, true, 5004);
}
TEST_CASE("matmul: non-square shapes, row and column vectors", OP_TAGS("[matmul]")) {
  // [1,3] x [3,1] is a dot product; [3,1] x [1,2] an outer product.
  require_value(mm<false, false>(), {tensor({1, 3}, {1, 2, 3}), tensor({3, 1}, {4, 5, 6})},
                tensor({1, 1}, {32}));
  require_value(mm<false, false>(), {tensor({3, 1}, {1, 2, 3}), tensor({1, 2}, {4, 5})},
                tensor({3, 2}, {4, 5, 8, 10, 12, 15}));
  check_matmul({1, 5}, {5, 1}, false, false, 5005);
  check_matmul({5, 1}, {2, 1}, false, true, 5006);
}

// ---------------------------------------------------------------------------------------
// Batched forms
// ---------------------------------------------------------------------------------------

TEST_CASE("matmul: batched [b,m,k] x shared [k,n]", OP_TAGS("[matmul]")) {
  // Stacking P and Q as a batch against Q.
  Tensor pq = Tensor::empty({2, 2, 2});
  for (index_t i = 0; i < 4; ++i) {
    pq.data()[i] = P().data()[i];
    pq.data()[4 + i] = Q().data()[i];
  }
  require_value(mm<false, false>(), {pq, Q()},
                tensor({2, 2, 2}, {19, 22, 43, 50, 67, 78, 91, 106}));
  check_matmul({2, 3, 4}, {4, 5}, false, false, 5101);
}
TEST_CASE("matmul: batched [b,m,k] x shared [n,k]^T (a linear layer on a batch)",
          OP_TAGS("[matmul]")) {
  check_matmul({2, 3, 4}, {5, 4}, false, true, 5102);
}
TEST_CASE("matmul: batched [b,k,m]^T x shared [k,n] and [n,k]^T", OP_TAGS("[matmul]")) {
  check_matmul({2, 4, 3}, {4, 2}, true, false, 5103);
  check_matmul({2, 4, 3}, {2, 4}, true, true, 5104);
}
TEST_CASE("matmul: batched x batched", OP_TAGS("[matmul]")) {
  check_matmul({2, 3, 4}, {2, 4, 2}, false, false, 5201);
  // Two batch axes, as in attention scores q k^T of [B, H, T, D].
  check_matmul({2, 2, 3, 2}, {2, 2, 3, 2}, false, true, 5202);
}
TEST_CASE("matmul: batched x batched with both operands transposed", OP_TAGS("[matmul]")) {
  check_matmul({2, 4, 3}, {2, 2, 4}, true, true, 5203);
  check_matmul({2, 4, 3}, {2, 4, 2}, true, false, 5204);
}
TEST_CASE("matmul: 2-D [m,k] x batched [b,k,n]", OP_TAGS("[matmul]")) {
  check_matmul({3, 4}, {2, 4, 2}, false, false, 5301);
  check_matmul({4, 3}, {2, 2, 4}, true, true, 5302);
}

// ---------------------------------------------------------------------------------------
// linear
// ---------------------------------------------------------------------------------------

TEST_CASE("linear with bias: x W^T + b", OP_TAGS("[matmul]")) {
  const auto f = [](const auto& x) { return linear(x[0], x[1], x[2]); };
  // x = P, W = Q, b = [1, -1]: P Q^T + b = [[17, 23], [39, 53]] + b.
  require_value(f, {P(), Q(), tensor({2}, {1, -1})}, tensor({2, 2}, {18, 22, 40, 52}));
  Generator gen(5401);
  const Tensor x = normal({4, 3}, gen), w = normal({2, 3}, gen), b = normal({2}, gen);
  require_value(f, {x, w, b}, zip_ref(matmul_ref(x, w, false, true), b, std::plus<>()), 1e-13,
                1e-14);
  require_gradcheck(f, {x, w, b});
}
TEST_CASE("linear with bias on a batched input [b,t,in]", OP_TAGS("[matmul]")) {
  const auto f = [](const auto& x) { return linear(x[0], x[1], x[2]); };
  Generator gen(5402);
  const Tensor x = normal({2, 3, 3}, gen), w = normal({2, 3}, gen), b = normal({2}, gen);
  require_value(f, {x, w, b}, zip_ref(matmul_ref(x, w, false, true), b, std::plus<>()), 1e-13,
                1e-14);
  require_gradcheck(f, {x, w, b});
}
TEST_CASE("linear without bias", OP_TAGS("[matmul]")) {
  const auto f = [](const auto& x) { return linear(x[0], x[1]); };
  require_value(f, {P(), Q()}, tensor({2, 2}, {17, 23, 39, 53}));
  Generator gen(5403);
  const Tensor x = normal({4, 3}, gen), w = normal({2, 3}, gen);
  require_gradcheck(f, {x, w});
}

TEST_CASE("gram: W W^T and W^T W", OP_TAGS("[matmul]")) {
  const auto rows = [](const auto& x) { return gram(x[0]); };
  const auto cols = [](const auto& x) { return gram(x[0], /*of_columns=*/true); };
  Generator gen(5404);
  const Tensor w = normal({3, 5}, gen);
  require_value(rows, {w}, matmul_ref(w, w, false, true), 1e-13, 1e-14);
  require_value(cols, {w}, matmul_ref(w, w, true, false), 1e-13, 1e-14);
  require_gradcheck(rows, {w});
  require_gradcheck(cols, {w});
  CHECK_THROWS_WITH(gram(normal({2, 3, 4}, gen)), Catch::Contains("gram"));
}

// ---------------------------------------------------------------------------------------
// Composition: causal self-attention
// ---------------------------------------------------------------------------------------

TEST_CASE("composition: causal softmax attention softmax(mask(q k^T / sqrt(d))) v",
          OP_TAGS("[matmul][composition]")) {
  constexpr index_t B = 1, H = 2, T = 3, D = 2;
  Tensor mask = Tensor::zeros({T, T});
  for (index_t i = 0; i < T; ++i)
    for (index_t j = i + 1; j < T; ++j) mask.at(i, j) = 1;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  const double neg_inf = -std::numeric_limits<double>::infinity();
  const auto attention = [=](const auto& x) {
    const auto scores = matmul(x[0], x[1], false, true) * scale;  // [B, H, T, T]
    return matmul(softmax(masked_fill(scores, mask, neg_inf), -1), x[2]);
  };

  Generator gen(5501);
  const Tensor q = normal({B, H, T, D}, gen), k = normal({B, H, T, D}, gen),
               v = normal({B, H, T, D}, gen);
  // Reference: for each head and query t, a softmax over keys s <= t.
  Tensor expected = Tensor::zeros({B, H, T, D});
  for (index_t h = 0; h < H; ++h)
    for (index_t t = 0; t < T; ++t) {
      std::vector<double> w(t + 1);
      double mx = neg_inf, total = 0;
      for (index_t s = 0; s <= t; ++s) {
        double dot = 0;
        for (index_t d = 0; d < D; ++d) dot += q.at(0, h, t, d) * k.at(0, h, s, d);
        w[s] = dot * scale;
        mx = std::max(mx, w[s]);
      }
      for (auto& e : w) total += (e = std::exp(e - mx));
      for (index_t s = 0; s <= t; ++s)
        for (index_t d = 0; d < D; ++d) expected.at(0, h, t, d) += w[s] / total * v.at(0, h, s, d);
    }
  require_value(attention, {q, k, v}, expected, 1e-13, 1e-14);
  // The first query sees only itself: its output is v at position 0 exactly.
  const Tensor out = attention(std::vector<Tensor>{q, k, v});
  for (index_t h = 0; h < H; ++h)
    for (index_t d = 0; d < D; ++d) CHECK(out.at(0, h, 0, d) == Approx(v.at(0, h, 0, d)));
  require_gradcheck(attention, {q, k, v});
}
