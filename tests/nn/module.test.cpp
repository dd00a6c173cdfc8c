// Module: state_dict names and order, parameter lookup, freezing, train/eval, zero_grad,
// custom modules through ModuleBase, and one definition running in all four modes.
#include "nn_check.hpp"

using namespace grokalign;
using namespace nn_check;
using Catch::Contains;

namespace {

nn::Sequential<double> small_mlp(Generator& gen) {
  return nn::Sequential<double>(nn::Linear<double>(4, 3, false, gen), nn::ReLU<double>(),
                                nn::Linear<double>(3, 2, true, gen));
}

// The example from module.hpp: one learnable scalar factor.
template <Scalar T>
class Scale : public nn::ModuleBase<Scale<T>, T> {
 public:
  Scale() { s_ = this->register_parameter("s", Tensor<T>::full(Shape{1}, T(2))); }
  template <class X>
  X apply(const X& x) const {
    return x * nn::lift<X>(s_);
  }
  // Exposes the protected registration for the error tests.
  void add(const std::string& name) { this->register_parameter(name, Tensor<T>::ones(Shape{1})); }

 private:
  Var<T> s_;
};

std::vector<std::string> names_of(const nn::Module<double>& m) {
  return m.parameter_names();
}

}  // namespace

TEST_CASE("nn: Sequential names its parameters as PyTorch's state_dict", "[nn]") {
  Generator gen(1);
  auto seq = small_mlp(gen);
  CHECK(seq.size() == 3);
  CHECK(names_of(seq) == std::vector<std::string>{"0.weight", "2.weight", "2.bias"});
  const auto named = seq.named_parameters();
  CHECK(named[0].second.shape() == Shape{3, 4});
  CHECK(named[1].second.shape() == Shape{2, 3});
  CHECK(named[2].second.shape() == Shape{2});
  CHECK(seq.num_parameters() == 12 + 6 + 2);
  CHECK(seq.parameters().size() == 3);
  CHECK(seq.parameter("2.bias").same_as(seq.at<nn::Linear<double>>(2).bias()));
  CHECK(seq.has_parameter("0.weight"));
  CHECK_FALSE(seq.has_parameter("0.bias"));
  CHECK_THROWS_AS(seq.at<nn::Linear<double>>(1), Error);
  CHECK_THROWS_WITH(seq[7], Contains("out of range"));

  // Nesting prefixes every level; named_modules lists the tree pre-order.
  nn::Sequential<double> outer;
  outer.push_back(nn::Tanh<double>());
  outer.push_back(small_mlp(gen));
  CHECK(names_of(outer) == std::vector<std::string>{"1.0.weight", "1.2.weight", "1.2.bias"});
  std::vector<std::string> modules;
  for (const auto& [name, m] : outer.named_modules()) modules.push_back(name);
  CHECK(modules == std::vector<std::string>{"", "0", "1", "1.0", "1.1", "1.2"});

  // Moving a module keeps its parameters (the same Vars) and names.
  const Vd w = seq.parameter("0.weight");
  nn::Sequential<double> moved = std::move(seq);
  CHECK(moved.parameter("0.weight").same_as(w));
}

TEST_CASE("nn: a missing parameter name is reported with the names nearest to it", "[nn]") {
  Generator gen(2);
  auto seq = small_mlp(gen);
  CHECK_THROWS_WITH(seq.parameter("2.weigth"),
                    Contains("'2.weigth'") && Contains("did you mean") && Contains("'2.weight'"));
  CHECK_THROWS_WITH(seq.parameter("2"), Contains("'2.weight'") && Contains("'2.bias'"));
  CHECK_THROWS_WITH(seq.parameter("classifier"),
                    Contains("the parameters are '0.weight', '2.weight', '2.bias'"));
  CHECK_THROWS_WITH(seq.freeze("3.weight"), Contains("Module::freeze"));

  Scale<double> s;
  CHECK_THROWS_WITH(s.add("s"), Contains("already exists"));
  CHECK_THROWS_WITH(s.add("a.b"), Contains("no '.'"));
}

TEST_CASE("nn: a frozen parameter is not trainable and receives no gradient", "[nn]") {
  Generator gen(3);
  auto seq = small_mlp(gen);
  const Td x = normal(Shape{5, 4}, gen);
  auto step = [&] {
    seq.zero_grad();
    sum(seq(Vd(x))).backward();
  };
  step();
  REQUIRE(seq.parameter("0.weight").grad().defined());

  seq.freeze("0.weight");
  CHECK_FALSE(seq.parameter("0.weight").requires_grad());
  CHECK_FALSE(seq.parameter("0.weight").grad().defined());  // the old gradient is dropped
  const auto trainable = seq.trainable_parameters();
  REQUIRE(trainable.size() == 2);
  CHECK(trainable[0].same_as(seq.parameter("2.weight")));
  step();
  CHECK_FALSE(seq.parameter("0.weight").grad().defined());
  CHECK(seq.parameter("2.weight").grad().defined());

  // A module path freezes everything below it.
  seq.freeze("2");
  CHECK(seq.trainable_parameters().empty());
  seq.unfreeze("2");
  seq.unfreeze("0.weight");
  CHECK(seq.trainable_parameters().size() == 3);
  step();
  CHECK(seq.parameter("0.weight").grad().defined());
}

TEST_CASE("nn: train/eval reach every submodule and zero_grad clears gradients", "[nn]") {
  Generator gen(4);
  nn::Sequential<double> outer;
  outer.push_back(small_mlp(gen));
  CHECK(outer.is_training());
  outer.eval();
  for (const auto& [name, m] : outer.named_modules()) CHECK_FALSE(m->is_training());
  outer.train();
  for (const auto& [name, m] : outer.named_modules()) CHECK(m->is_training());

  sum(outer(Vd(normal(Shape{2, 4}, gen)))).backward();
  outer.zero_grad(/*set_to_none=*/false);
  for (const auto& p : outer.parameters()) {
    REQUIRE(p.grad().defined());
    CHECK(p.grad().array().abs().maxCoeff() == 0.0);
  }
  outer.zero_grad();  // PyTorch 2's default: set_to_none
  for (const auto& p : outer.parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("nn: one module definition runs on Tensor, Var, Dual<Tensor> and Dual<Var>", "[nn]") {
  Generator gen(5);
  nn::Sequential<double> net(nn::Linear<double>(3, 4, true, gen), nn::Tanh<double>(),
                             nn::Linear<double>(4, 2, true, gen), Scale<double>());
  const Td x = normal(Shape{2, 3}, gen), u = normal(Shape{2, 3}, gen);
  const Td y = net(x);
  require_close(net(Vd(x)).value(), y);
  const DT yd = net(DT(x, u));
  require_close(yd.primal(), y);
  const DV ydv = net(DV(Vd(x), Vd(u)));
  require_close(ydv.primal().value(), y);
  require_close(ydv.tangent().value(), yd.tangent());

  // The tangent is J u: compare with central differences of the Tensor evaluation.
  const double h = 1e-6;
  Td xp = x.clone(), xm = x.clone();
  xp.array() += h * u.array();
  xm.array() -= h * u.array();
  Td fd = net(xp).clone();
  fd.array() = (fd.array() - net(xm).array()) / (2 * h);
  require_close(yd.tangent(), fd, 1e-7);

  // Parameters are constants of forward mode but leaves of the recorded tangent, so J u
  // can be differentiated in the weights (reverse-over-forward).
  const Td w = normal(Shape{2, 2}, gen);
  require_parameter_gradients(
      net, [&] { return sum(net(DV(Vd(x), Vd(u))).tangent() * Vd(w)); },
      [&] { return dot(net(DT(x, u)).tangent(), w); });
}
