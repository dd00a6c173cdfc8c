// The reverse-mode engine: backward() accumulation, grad() with intermediate inputs,
// multiple outputs, fan-out, unused inputs, grad modes, higher derivatives, pruning of
// unneeded gradients and very deep graphs.
#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <grokalign/grokalign.hpp>

#include <vector>
#include "../support/check_close.hpp"

using namespace grokalign;

namespace {

using Td = Tensor<double>;
using Vd = Var<double>;

using test_support::check_close;

// A matrix product whose VJP counts, per input, how often it was asked to form that
// input's cotangent. It otherwise behaves exactly like rules::Matmul (no transposes).
struct CountingMatmul : RuleBase {
  static constexpr const char* kName = "counting_matmul";
  struct Params {};
  static inline int vjp_calls[2] = {0, 0};
  static void reset() { vjp_calls[0] = vjp_calls[1] = 0; }
  static Td forward(const Params&, const Td* in) {
    return kernels::matmul(in[0], in[1], false, false);
  }
  template <class X>
  static X jvp(const Params&, const X* t, const X* in, const X&) {
    X r;
    if (t[0].defined()) r = matmul(t[0], in[1]);
    if (t[1].defined()) r = accumulate(r, matmul(in[0], t[1]));
    return r;
  }
  template <class X>
  static void vjp(const Params&, const X& gy, const X* in, const X&, const bool* need, X* gx) {
    if (need[0]) {
      ++vjp_calls[0];
      gx[0] = matmul(gy, in[1], false, true);
    }
    if (need[1]) {
      ++vjp_calls[1];
      gx[1] = matmul(in[0], gy, true, false);
    }
  }
};

template <Differentiable X>
X counting_matmul(const X& a, const X& b) {
  return apply_op<CountingMatmul>({}, std::array<X, 2>{a, b});
}

}  // namespace

TEST_CASE("backward accumulates into leaves over two calls; zero_grad keeps the buffer",
          "[autodiff][reverse]") {
  Vd x(Td::from(Shape{3}, {1.0, 2.0, 3.0}), true);
  CHECK_FALSE(x.grad().defined());
  {
    const Vd y = sum(x * x);  // dy/dx = 2x
    y.backward();
  }
  check_close(x.grad(), Td::from(Shape{3}, {2.0, 4.0, 6.0}));
  const double* buffer = x.grad().data();
  {
    const Vd y = sum(x * 3.0);  // dy/dx = 3
    y.backward();
  }
  check_close(x.grad(), Td::from(Shape{3}, {5.0, 7.0, 9.0}));
  CHECK(x.grad().data() == buffer);  // accumulated in place

  x.zero_grad();
  REQUIRE(x.grad().defined());
  CHECK(x.grad().data() == buffer);
  for (double v : x.grad()) CHECK(v == 0.0);

  // A non-scalar output with an explicit upstream vector.
  const Vd z = x * x;
  z.backward(Td::from(Shape{3}, {1.0, 0.0, -1.0}));
  check_close(x.grad(), Td::from(Shape{3}, {2.0, 0.0, -6.0}));
  CHECK(x.grad().data() == buffer);

  // Leaves that do not require grad receive nothing.
  Vd c(Td::from(Shape{3}, {1.0, 1.0, 1.0}));
  sum(x * c).backward();
  CHECK_FALSE(c.grad().defined());

  // The grad of backward does not alias the upstream tensor.
  Vd w(Td::from(Shape{2}, {1.0, 2.0}), true);
  Td up = Td::from(Shape{2}, {1.0, 1.0});
  (w + 0.0).backward(up);
  up.fill(5.0);
  check_close(w.grad(), Td::from(Shape{2}, {1.0, 1.0}));
}

TEST_CASE("grad of an intermediate (non-leaf) Var", "[autodiff][reverse]") {
  Vd x(Td::from(Shape{2}, {0.5, -1.5}), true);
  const Vd h = x * x;        // intermediate
  const Vd y = sum(exp(h));  // dy/dh = exp(h)
  auto g = grad<double>({y}, {h, x});
  REQUIRE(g.size() == 2);
  const Td eh = Td::from(Shape{2}, {std::exp(0.25), std::exp(2.25)});
  check_close(g[0].value(), eh);
  check_close(g[1].value(), Td::from(Shape{2}, {2 * 0.5 * eh.data()[0], 2 * -1.5 * eh.data()[1]}));
  CHECK_FALSE(g[0].requires_grad());  // no create_graph

  // The output itself as an input: gradient is the seed.
  auto gs = grad<double>({y}, {y});
  CHECK(gs[0].value().item() == 1.0);
}

TEST_CASE("grad with multiple outputs and grad_outputs", "[autodiff][reverse]") {
  Vd a(Td::from(Shape{2}, {1.0, 2.0}), true);
  Vd b(Td::from(Shape{2}, {3.0, -1.0}), true);
  const Vd y1 = a * b;  // [2]
  const Vd y2 = a + b;  // [2]
  const Td v1 = Td::from(Shape{2}, {1.0, 2.0});
  const Td v2 = Td::from(Shape{2}, {-1.0, 0.5});
  auto g = grad<double>({y1, y2}, {a, b}, {Vd(v1), Vd(v2)});
  // d/da <v1, a b> + <v2, a + b> = v1 b + v2 ; d/db = v1 a + v2
  check_close(g[0].value(), Td::from(Shape{2}, {1 * 3.0 - 1.0, 2 * -1.0 + 0.5}));
  check_close(g[1].value(), Td::from(Shape{2}, {1 * 1.0 - 1.0, 2 * 2.0 + 0.5}));

  // Two scalar outputs without grad_outputs: each is seeded with 1.
  const Vd s1 = sum(a * a), s2 = sum(b) * 2.0;
  auto h = grad<double>({s1, s2}, {a, b});
  check_close(h[0].value(), Td::from(Shape{2}, {2.0, 4.0}));
  check_close(h[1].value(), Td::from(Shape{2}, {2.0, 2.0}));

  // An undefined grad_output for a scalar output means "seed with one".
  auto k = grad<double>({s1, s2}, {a}, {Vd(), Vd(Td::scalar(3.0))});
  check_close(k[0].value(), Td::from(Shape{2}, {2.0, 4.0}));
}

TEST_CASE("a Var used many times accumulates its gradient (fan-out)", "[autodiff][reverse]") {
  Vd x(Td::from(Shape{2}, {1.5, -0.5}), true);
  Vd acc = x;
  for (int i = 0; i < 9; ++i) acc = acc + x;  // 10 x
  const Vd y = sum(acc * x);                  // 10 x^2 -> 20 x
  auto g = grad<double>({y}, {x});
  check_close(g[0].value(), Td::from(Shape{2}, {30.0, -10.0}));

  // Diamond: x feeds two branches that meet again.
  const Vd p = exp(x), q = x * 2.0;
  const Vd z = sum(p * q);  // d/dx = e^x 2x + 2 e^x
  auto gz = grad<double>({z}, {x});
  const double e0 = std::exp(1.5), e1 = std::exp(-0.5);
  check_close(gz[0].value(), Td::from(Shape{2}, {e0 * 3.0 + 2 * e0, e1 * -1.0 + 2 * e1}));

  // backward() accumulates fan-out too.
  y.backward();
  check_close(x.grad(), Td::from(Shape{2}, {30.0, -10.0}));
}

TEST_CASE("grad with the same input listed twice gives it to both", "[autodiff][reverse]") {
  // As torch.autograd.grad(y, [x, x]): each occurrence receives the full gradient.
  Vd x(Td::from(Shape{2}, {1.0, 2.0}), true);
  const Vd y = sum(x * x);
  std::vector<Vd> g;
  REQUIRE_NOTHROW(g = grad<double>({y}, {x, x}));
  REQUIRE(g.size() == 2);
  check_close(g[0].value(), Td::from(Shape{2}, {2.0, 4.0}));
  check_close(g[1].value(), Td::from(Shape{2}, {2.0, 4.0}));

  // The same for an intermediate.
  const Vd h = x * 3.0;
  const Vd z = sum(h * h);
  std::vector<Vd> gh;
  REQUIRE_NOTHROW(gh = grad<double>({z}, {h, x, h}));
  check_close(gh[0].value(), Td::from(Shape{2}, {6.0, 12.0}));
  check_close(gh[1].value(), Td::from(Shape{2}, {18.0, 36.0}));
  check_close(gh[2].value(), Td::from(Shape{2}, {6.0, 12.0}));
}

TEST_CASE("allow_unused and structurally zero gradients", "[autodiff][reverse]") {
  Vd x(Td::from(Shape{2}, {1.0, 2.0}), true);
  Vd unrelated(Td::from(Shape{3}, {1.0, 2.0, 3.0}), true);
  const Vd y = sum(x * x);

  auto g = grad<double>({y}, {x, unrelated}, {}, {.create_graph = false, .allow_unused = true});
  CHECK(g[0].defined());
  CHECK_FALSE(g[1].defined());

  // Reached, but the derivative is structurally zero: x^0 is a constant.
  const Vd c = sum(pow(x, 0.0)) + sum(unrelated);
  auto gz = grad<double>({c}, {x, unrelated});
  REQUIRE(gz[0].defined());
  CHECK(gz[0].shape() == Shape{2});
  for (double v : gz[0].value()) CHECK(v == 0.0);
  check_close(gz[1].value(), Td::ones(Shape{3}));

  // Same with create_graph: zeros, not undefined.
  auto gz2 = grad<double>({c}, {x}, {}, {.create_graph = true});
  REQUIRE(gz2[0].defined());
  for (double v : gz2[0].value()) CHECK(v == 0.0);
}

TEST_CASE("NoGradGuard, detach and requires_grad propagation", "[autodiff][reverse]") {
  Vd x(Td::from(Shape{2}, {1.0, 2.0}), true);
  Vd c(Td::from(Shape{2}, {3.0, 4.0}));
  CHECK(x.requires_grad());
  CHECK(x.is_leaf());
  CHECK_FALSE(c.requires_grad());

  const Vd y = x * c;
  CHECK(y.requires_grad());
  CHECK_FALSE(y.is_leaf());
  CHECK(y.node() != nullptr);
  CHECK(std::string(y.node()->name()) == "mul");
  const Vd k = c * c + 1.0;
  CHECK_FALSE(k.requires_grad());
  CHECK(k.node() == nullptr);

  {
    NoGradGuard guard;
    CHECK_FALSE(GradMode::enabled());
    const Vd z = exp(x * c);
    CHECK_FALSE(z.requires_grad());
    CHECK(z.node() == nullptr);
    CHECK(z.value().at(1) == Approx(std::exp(8.0)));
    { NoGradGuard nested; }
    CHECK_FALSE(GradMode::enabled());
  }
  CHECK(GradMode::enabled());

  const Vd d = (x * x).detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  CHECK(d.value().at(1) == 4.0);
  // Through the detached branch nothing flows: y = sum(d * x) -> dy/dx = d.
  const Vd s = sum(d * x);
  auto g = grad<double>({s}, {x});
  check_close(g[0].value(), Td::from(Shape{2}, {1.0, 4.0}));

  // set_requires_grad turns a constant into an input.
  Vd w(Td::from(Shape{2}, {1.0, 1.0}));
  w.set_requires_grad();
  CHECK((w * c).requires_grad());
  w.set_requires_grad(false);
  CHECK_FALSE((w * c).requires_grad());
}

TEST_CASE("create_graph: higher derivatives of x^4", "[autodiff][reverse][higher-order]") {
  const Td xv = Td::from(Shape{3}, {0.5, -1.25, 2.0});
  Vd x(xv, true);
  const Vd y = sum(pow(x, 4.0));
  const Vd g1 = grad<double>({y}, {x}, {}, {.create_graph = true})[0];
  REQUIRE(g1.requires_grad());
  const Vd g2 = grad<double>({sum(g1)}, {x}, {}, {.create_graph = true})[0];
  REQUIRE(g2.requires_grad());
  const Vd g3 = grad<double>({sum(g2)}, {x}, {}, {.create_graph = true})[0];
  REQUIRE(g3.requires_grad());
  const Vd g4 = grad<double>({sum(g3)}, {x})[0];
  for (index_t i = 0; i < 3; ++i) {
    const double t = xv.data()[i];
    CHECK(g1.value().data()[i] == Approx(4 * t * t * t).epsilon(1e-13));
    CHECK(g2.value().data()[i] == Approx(12 * t * t).epsilon(1e-13));
    CHECK(g3.value().data()[i] == Approx(24 * t).epsilon(1e-13));
    CHECK(g4.value().data()[i] == Approx(24.0).epsilon(1e-13));
  }

  // The same written as x*x*x*x (products only).
  const Vd p = sum(x * x * x * x);
  const Vd p1 = grad<double>({p}, {x}, {}, {.create_graph = true})[0];
  const Vd p2 = grad<double>({sum(p1)}, {x}, {}, {.create_graph = true})[0];
  const Vd p3 = grad<double>({sum(p2)}, {x})[0];
  CHECK_FALSE(p3.requires_grad());
  for (index_t i = 0; i < 3; ++i)
    CHECK(p3.value().data()[i] == Approx(24 * xv.data()[i]).epsilon(1e-13));

  // Without create_graph the result is a constant.
  const Vd q = grad<double>({p}, {x})[0];
  CHECK_FALSE(q.requires_grad());
}

TEST_CASE("the engine forms only the gradients that are needed", "[autodiff][reverse]") {
  Generator gen(11);
  Vd x(randn<double>(Shape{4, 3}, gen), true);
  Vd W(randn<double>(Shape{3, 2}, gen), true);

  CountingMatmul::reset();
  const Vd y = counting_matmul(x, W);
  auto gx = grad<double>({sum(y)}, {x});
  CHECK(CountingMatmul::vjp_calls[0] == 1);
  CHECK(CountingMatmul::vjp_calls[1] == 0);  // W's gradient never formed
  check_close(gx[0].value(), [&] {
    Td e = Td::zeros(Shape{4, 3});
    e.matrix() = Eigen::MatrixXd::Ones(4, 2) * W.value().matrix().transpose();
    return e;
  }());

  CountingMatmul::reset();
  auto gw = grad<double>({sum(y)}, {W});
  CHECK(CountingMatmul::vjp_calls[0] == 0);
  CHECK(CountingMatmul::vjp_calls[1] == 1);
  check_close(gw[0].value(), [&] {
    Td e = Td::zeros(Shape{3, 2});
    e.matrix() = x.value().matrix().transpose() * Eigen::MatrixXd::Ones(4, 2);
    return e;
  }());

  // Two layers: asking only for the first weight forms no gradient of the second weight
  // and no gradient of the input.
  Vd W2(randn<double>(Shape{2, 2}, gen), true);
  CountingMatmul::reset();
  const Vd h = counting_matmul(x, W);   // calls: [x, W]
  const Vd o = counting_matmul(h, W2);  // calls: [h, W2]
  grad<double>({sum(o)}, {W});
  CHECK(CountingMatmul::vjp_calls[0] == 1);  // o -> h only
  CHECK(CountingMatmul::vjp_calls[1] == 1);  // h -> W only

  // A branch that does not lead to a requested input is skipped entirely.
  CountingMatmul::reset();
  const Vd other = counting_matmul(x, W);
  const Vd total = sum(o) + sum(other);
  grad<double>({total}, {W2});
  CHECK(CountingMatmul::vjp_calls[0] == 0);
  CHECK(CountingMatmul::vjp_calls[1] == 1);

  // backward() forms the gradient of every leaf that requires grad (and not of constants).
  CountingMatmul::reset();
  Vd xc(x.value());  // constant input
  counting_matmul(xc, W).backward(Td::ones(Shape{4, 2}));
  CHECK(CountingMatmul::vjp_calls[0] == 0);
  CHECK(CountingMatmul::vjp_calls[1] == 1);
}

TEST_CASE("backward(inputs) fills only the given leaves and prunes the rest",
          "[autodiff][reverse]") {
  const Vd x(Td::from(Shape{2, 2}, {1.0, 2.0, 3.0, 4.0}), true);
  const Vd w(Td::from(Shape{2, 2}, {0.5, -1.0, 2.0, 1.5}), true);
  CountingMatmul::reset();
  const Vd y = sum(counting_matmul(x, w));
  const std::vector<Vd> only_w{w};
  y.backward(only_w);
  // d sum(x w) / dw = x^T 1
  check_close(w.grad(), Td::from(Shape{2, 2}, {4.0, 4.0, 6.0, 6.0}));
  CHECK_FALSE(x.grad().defined());
  CHECK(CountingMatmul::vjp_calls[0] == 0);  // x's cotangent was never formed
  CHECK(CountingMatmul::vjp_calls[1] == 1);

  const Vd h = x * 2.0;
  const std::vector<Vd> intermediate{h};
  CHECK_THROWS_WITH(sum(h).backward(intermediate), Catch::Contains("not a leaf"));
  const Vd c(Td::from(Shape{2}, {1.0, 2.0}));
  const std::vector<Vd> constant{c};
  CHECK_THROWS_WITH(sum(x).backward(constant), Catch::Contains("does not require grad"));
}

TEST_CASE("leaves that receive one shared cotangent get separate gradient buffers",
          "[autodiff][reverse]") {
  // Add passes the same cotangent tensor to both inputs: the first leaf must copy it, and
  // only the last holder may keep the buffer.
  const Vd a(Td::from(Shape{3}, {1.0, 2.0, 3.0}), true);
  const Vd b(Td::from(Shape{3}, {4.0, 5.0, 6.0}), true);
  (a + b).backward(Td::from(Shape{3}, {1.0, 2.0, 3.0}));
  REQUIRE(a.grad().defined());
  REQUIRE(b.grad().defined());
  CHECK_FALSE(a.grad().shares_storage_with(b.grad()));
  Td ga = a.grad();
  ga.fill(0.0);
  check_close(b.grad(), Td::from(Shape{3}, {1.0, 2.0, 3.0}));
}

TEST_CASE("grad of one output with respect to one input", "[autodiff][reverse]") {
  const Vd x(Td::from(Shape{2}, {1.0, -2.0}), true);
  const Vd y = x * x;
  const Vd g = grad(y, x, Vd(Td::from(Shape{2}, {1.0, 1.0})), {.create_graph = true});
  check_close(g.value(), Td::from(Shape{2}, {2.0, -4.0}));
  const Vd gg = grad(sum(g), x);  // second derivative of x^2 is 2
  check_close(gg.value(), Td::from(Shape{2}, {2.0, 2.0}));
  CHECK_THROWS_WITH(grad(y, x), Catch::Contains("grad_output of that shape"));
}

TEST_CASE("a chain of 100000 nodes builds, runs backward and is destroyed", "[autodiff][reverse]") {
  constexpr int kDepth = 100000;
  const double expected = std::pow(1.0000001, kDepth);
  const auto start = std::chrono::steady_clock::now();
  Vd x0(Td::from(Shape{1}, {1.0}), true);
  {
    Vd x = x0;
    for (int i = 0; i < kDepth; ++i) x = x * 1.0000001;
    const Vd y = sum(x);
    y.backward();
    CHECK(x0.grad().item() == Approx(expected).epsilon(1e-9));
    const auto g = grad<double>({y}, {x0});
    CHECK(g[0].value().item() == Approx(expected).epsilon(1e-9));
  }  // the whole chain is released here, iteratively
  {
    // A chain whose only handle is dropped from its tail.
    Vd x = x0;
    for (int i = 0; i < kDepth; ++i) x = x + 0.0;
    x = Vd();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO("deep chain took " << seconds << " s");
  CHECK(seconds < 5.0);  // generous; well under 1 s in Release
}

TEST_CASE("forward mode and create_graph over a chain of 50000 nodes",
          "[autodiff][reverse][higher-order]") {
  constexpr int kDepth = 50000;
  const double expected = std::pow(1.0000001, kDepth);
  Vd x0(Td::from(Shape{1}, {1.0}), true);
  Vd x = x0;
  for (int i = 0; i < kDepth; ++i) x = x * 1.0000001;
  const auto t = jvp_graph<double>({x}, {x0}, {Td::ones(Shape{1})});
  CHECK(t[0].item() == Approx(expected).epsilon(1e-9));
  // create_graph over a chain that is linear in x0 records nothing: the derivative is constant.
  const Vd g = grad<double>({sum(x)}, {x0}, {}, {.create_graph = true})[0];
  CHECK(g.value().item() == Approx(expected).epsilon(1e-9));
  REQUIRE_FALSE(g.requires_grad());
  // A non-linear end makes the gradient depend on x0 through the whole chain: the recorded
  // backward pass is itself a chain of that depth, differentiated once more.
  const Vd h = grad<double>({sum(x * x)}, {x0}, {}, {.create_graph = true})[0];
  REQUIRE(h.requires_grad());
  const Vd h2 = grad<double>({sum(h)}, {x0})[0];
  CHECK(h2.value().item() == Approx(2 * expected * expected).epsilon(1e-9));
}
