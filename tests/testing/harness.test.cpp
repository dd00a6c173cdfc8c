// The gradient-checking harness can fail: deliberately broken rules (wrong VJP, a VJP that
// is right on tensors but not differentiable again, wrong JVP) are caught by the check that
// targets them, and correct compositions pass.
#include <array>
#include <catch2/catch.hpp>
#include <grokalign/grokalign.hpp>
#include <grokalign/testing.hpp>
#include <vector>

using namespace grokalign;
using Catch::Contains;

namespace {

using Td = Tensor<double>;

template <Scalar T>
Tensor<T> square_kernel(const Tensor<T>& x) {
  return kernels::map(x, [](T a) { return a * a; });
}

// x^2 with correct rules (the control).
template <Scalar T>
struct GoodSquare : RuleBase {
  static constexpr const char* kName = "good_square";
  struct Params {};
  static Tensor<T> forward(const Params&, const Tensor<T>* in) { return square_kernel(in[0]); }
  template <class X>
  static X jvp(const Params&, const X* t, const X* in, const X&) {
    return t[0] * in[0] * T(2);
  }
  template <class X>
  static void vjp(const Params&, const X& gy, const X* in, const X&, const bool*, X* gx) {
    gx[0] = gy * in[0] * T(2);
  }
};

// (a) The VJP is off by a factor 3/2.
template <Scalar T>
struct WrongVjpSquare : GoodSquare<T> {
  static constexpr const char* kName = "wrong_vjp_square";
  using Params = typename GoodSquare<T>::Params;
  template <class X>
  static void vjp(const Params&, const X& gy, const X* in, const X&, const bool*, X* gx) {
    gx[0] = gy * in[0] * T(3);
  }
};

// (b) The VJP has the right value but treats x as a constant, so when it is recorded
// (create_graph) the dependence on x is lost and every second derivative through it is wrong.
template <Scalar T>
struct ConstantVjpSquare : GoodSquare<T> {
  static constexpr const char* kName = "constant_vjp_square";
  using Params = typename GoodSquare<T>::Params;
  template <class X>
  static void vjp(const Params&, const X& gy, const X* in, const X&, const bool*, X* gx) {
    gx[0] = gy * constant_like(in[0], value_of(in[0])) * T(2);
  }
};

// (b') The same mistake in the JVP: right tangents, but reverse-over-forward sees a constant.
template <Scalar T>
struct ConstantJvpSquare : GoodSquare<T> {
  static constexpr const char* kName = "constant_jvp_square";
  using Params = typename GoodSquare<T>::Params;
  template <class X>
  static X jvp(const Params&, const X* t, const X* in, const X&) {
    return t[0] * constant_like(in[0], value_of(in[0])) * T(2);
  }
};

// (c) The JVP is off by a factor 3/2.
template <Scalar T>
struct WrongJvpSquare : GoodSquare<T> {
  static constexpr const char* kName = "wrong_jvp_square";
  using Params = typename GoodSquare<T>::Params;
  template <class X>
  static X jvp(const Params&, const X* t, const X* in, const X&) {
    return t[0] * in[0] * T(3);
  }
};

template <template <class> class Rule, Differentiable X>
X apply1(const X& x) {
  return apply_op<Rule<scalar_of<X>>>({}, std::array<X, 1>{x});
}

// f(xs) = sum-free composition around the op so that every check sees it.
template <template <class> class Rule>
auto around(const std::vector<Td>&) {
  return [](const auto& xs) { return tanh(apply1<Rule>(xs[0]) * 0.5) + xs[0]; };
}

std::vector<Td> inputs() {
  Generator gen(99);
  return {randn<double>(Shape{2, 3}, gen)};
}

bool mentions(const std::string& msg, const std::string& what) {
  return msg.find(what) != std::string::npos;
}

}  // namespace

TEST_CASE("the harness passes correct rules and compositions", "[testing]") {
  const auto x = inputs();
  const auto rep = testing::gradcheck(around<GoodSquare>(x), x);
  INFO(rep.message);
  CHECK(rep.ok);
  CHECK(rep.checks > 0);
  CHECK(rep.message.empty());

  // A composition of library ops with two inputs, broadcasting and reductions.
  Generator gen(5);
  const std::vector<Td> ins{randn<double>(Shape{2, 3}, gen), randn<double>(Shape{3}, gen),
                            randn<double>(Shape{3, 2}, gen)};
  auto f = [](const auto& xs) {
    const auto h = tanh(xs[0] * xs[1]) + exp(xs[1] * 0.3);
    return sum(softmax(matmul(h, xs[2]), -1) * matmul(h, xs[2]), {1}) + sigmoid(sum(xs[1]));
  };
  const auto rep2 = testing::gradcheck(f, ins);
  INFO(rep2.message);
  CHECK(rep2.ok);
  // Every first- and second-order comparison ran: at least one per input entry per check.
  CHECK(rep2.checks > 4 * (6 + 3 + 6));

  // check_value against a reference.
  const Td expected = f(ins);
  CHECK(testing::check_value(f, ins, expected).ok);
  Td off = expected.clone();
  off.data()[0] += 1e-3;
  const auto bad = testing::check_value(f, ins, off);
  CHECK_FALSE(bad.ok);
  CHECK_THAT(bad.message, Contains("value[0]"));
  CHECK_FALSE(testing::check_value(f, ins, Td::zeros(Shape{3})).ok);
}

TEST_CASE("the harness catches a wrong VJP", "[testing]") {
  const auto x = inputs();
  const auto rep = testing::gradcheck(around<WrongVjpSquare>(x), x);
  CHECK_FALSE(rep.ok);
  CHECK_THAT(rep.message, Contains("VJP input 0"));
  CHECK_FALSE(mentions(rep.message, "JVP ["));  // forward mode is right
  // First order alone already fails.
  testing::GradcheckOptions first;
  first.second_order = false;
  const auto rep1 = testing::gradcheck(around<WrongVjpSquare>(x), x, first);
  CHECK_FALSE(rep1.ok);
  CHECK_THAT(rep1.message, Contains("VJP"));
}

TEST_CASE("the harness catches a VJP that is not differentiable again", "[testing]") {
  const auto x = inputs();
  testing::GradcheckOptions first;
  first.second_order = false;
  const auto rep1 = testing::gradcheck(around<ConstantVjpSquare>(x), x, first);
  INFO(rep1.message);
  CHECK(rep1.ok);  // every first-order check passes

  // A generous report limit so that every failing kind is listed.
  testing::GradcheckOptions all;
  all.max_failures_reported = 1000;
  const auto rep = testing::gradcheck(around<ConstantVjpSquare>(x), x, all);
  CHECK_FALSE(rep.ok);
  CHECK_THAT(rep.message, Contains("VJP of VJP"));
  CHECK_THAT(rep.message, Contains("JVP of VJP"));
  CHECK_FALSE(mentions(rep.message, "VJP input"));   // first order is fine
  CHECK_FALSE(mentions(rep.message, "VJP of JVP"));  // the JVP rule is right

  // The mirror image: a JVP rule that is right on tensors but not when recorded.
  const auto rj1 = testing::gradcheck(around<ConstantJvpSquare>(x), x, first);
  INFO(rj1.message);
  CHECK(rj1.ok);
  const auto rj = testing::gradcheck(around<ConstantJvpSquare>(x), x, all);
  CHECK_FALSE(rj.ok);
  CHECK_THAT(rj.message, Contains("VJP of JVP"));
  CHECK_FALSE(mentions(rj.message, "VJP of VJP"));
}

TEST_CASE("the harness catches a wrong JVP", "[testing]") {
  const auto x = inputs();
  testing::GradcheckOptions all;
  all.max_failures_reported = 1000;
  const auto rep = testing::gradcheck(around<WrongJvpSquare>(x), x, all);
  CHECK_FALSE(rep.ok);
  CHECK_THAT(rep.message, Contains("JVP ["));
  CHECK_FALSE(mentions(rep.message, "VJP input"));  // reverse mode is right
  testing::GradcheckOptions first;
  first.second_order = false;
  const auto rep1 = testing::gradcheck(around<WrongJvpSquare>(x), x, first);
  CHECK_FALSE(rep1.ok);
  CHECK_THAT(rep1.message, Contains("JVP"));
}
