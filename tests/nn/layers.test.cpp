// Layers: values against hand computations and direct loops, initialisers, and every
// layer's derivatives (first and second order, all modes) through the testing harness.
#include "nn_check.hpp"

using namespace grokalign;
using namespace nn_check;
using Catch::Contains;

namespace {

// The definition of a convolution with bias, independent of the im2col kernels.
Td naive_conv2d(const Td& x, const Td& w, const Td& b, index_t s, index_t p) {
  const index_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3);
  const index_t o = w.dim(0), k = w.dim(2);
  const index_t oh = (h + 2 * p - k) / s + 1, ow = (wd + 2 * p - k) / s + 1;
  Td y = Td::zeros(Shape{n, o, oh, ow});
  for (index_t bi = 0; bi < n; ++bi)
    for (index_t f = 0; f < o; ++f)
      for (index_t r = 0; r < oh; ++r)
        for (index_t q = 0; q < ow; ++q) {
          double acc = b.defined() ? b.at(f) : 0.0;
          for (index_t ch = 0; ch < c; ++ch)
            for (index_t i = 0; i < k; ++i)
              for (index_t j = 0; j < k; ++j) {
                const index_t ih = r * s - p + i, iw = q * s - p + j;
                if (ih >= 0 && ih < h && iw >= 0 && iw < wd)
                  acc += x.at(bi, ch, ih, iw) * w.at(f, ch, i, j);
              }
          y.at(bi, f, r, q) = acc;
        }
  return y;
}

Td naive_avg_pool2d(const Td& x, index_t k, index_t s) {
  const index_t n = x.dim(0), c = x.dim(1), oh = (x.dim(2) - k) / s + 1,
                ow = (x.dim(3) - k) / s + 1;
  Td y = Td::zeros(Shape{n, c, oh, ow});
  for (index_t bi = 0; bi < n; ++bi)
    for (index_t ch = 0; ch < c; ++ch)
      for (index_t r = 0; r < oh; ++r)
        for (index_t q = 0; q < ow; ++q) {
          double acc = 0;
          for (index_t i = 0; i < k; ++i)
            for (index_t j = 0; j < k; ++j) acc += x.at(bi, ch, r * s + i, q * s + j);
          y.at(bi, ch, r, q) = acc / double(k * k);
        }
  return y;
}

// Away from ReLU's kink, so that finite differences see one linear piece.
Td away_from_zero(const Shape& s, Generator& gen) {
  Td t = normal(s, gen);
  for (double& v : t) v += v >= 0 ? 0.2 : -0.2;
  return t;
}

double mean_of(const Td& t) {
  return t.array().mean();
}
double variance_of(const Td& t) {
  return (t.array() - mean_of(t)).square().mean();
}

}  // namespace

TEST_CASE("nn: Linear computes x W^T + b", "[nn]") {
  nn::Linear<double> lin(2, 3);
  lin.weight().assign(Td::from(Shape{3, 2}, {1, 2, 3, 4, 5, 6}));
  lin.bias().assign(Td::from(Shape{3}, {0.5, -1, 2}));
  const Td x = Td::from(Shape{2, 2}, {1, -1, 2, 0.5});
  // Row 0: [1 - 2 + 0.5, 3 - 4 - 1, 5 - 6 + 2]; row 1: [2 + 1 + 0.5, 6 + 2 - 1, 10 + 3 + 2].
  const Td want = Td::from(Shape{2, 3}, {-0.5, -2, 1, 3.5, 7, 15});
  require_close(lin(x), want);
  require_close(lin(x.reshape(Shape{2, 1, 2})), want.reshape(Shape{2, 1, 3}));

  nn::Linear<double> no_bias(2, 3, false);
  no_bias.weight().assign(lin.weight().value());
  CHECK_FALSE(no_bias.has_bias());
  CHECK(no_bias.parameter_names() == std::vector<std::string>{"weight"});
  require_close(no_bias(x), Td::from(Shape{2, 3}, {-1, -1, -1, 3, 8, 13}));

  CHECK_THROWS_AS(lin(Td::zeros(Shape{2, 3})), ShapeError);
  CHECK_THROWS_WITH(lin(Td::zeros(Shape{2, 3})), Contains("Linear") && Contains("[2, 3]"));
}

TEST_CASE("nn: activations and Flatten match hand-computed values", "[nn]") {
  const Td x = Td::from(Shape{1, 3}, {-1.0, 0.0, 2.0});
  auto each = [&](auto fn) {
    Td r = x.clone();
    for (double& v : r) v = fn(v);
    return r;
  };
  require_close(nn::ReLU<double>()(x), Td::from(Shape{1, 3}, {0, 0, 2}));
  require_close(nn::Tanh<double>()(x), each([](double v) { return std::tanh(v); }));
  require_close(nn::Sigmoid<double>()(x), each([](double v) { return 1 / (1 + std::exp(-v)); }));
  require_close(nn::GELU<double>()(x),
                each([](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }));

  const Td t = Td::zeros(Shape{2, 3, 4, 5});
  CHECK(nn::Flatten<double>()(t).shape() == Shape{2, 60});
  CHECK(nn::Flatten<double>(2)(t).shape() == Shape{2, 3, 20});
  CHECK(nn::ReLU<double>().parameters().empty());
}

TEST_CASE("nn: Conv2d and AvgPool2d match direct loops", "[nn]") {
  Generator gen(11);
  const Td x = normal(Shape{2, 2, 5, 5}, gen);
  for (index_t stride : {1, 2})
    for (index_t pad : {0, 1}) {
      nn::Conv2d<double> conv(2, 3, 3, stride, pad, true, gen);
      CHECK(conv.weight().shape() == Shape{3, 2, 3, 3});
      CHECK(conv.parameter_names() == std::vector<std::string>{"weight", "bias"});
      const Td y = conv(x);
      CHECK(y.dim(2) == conv.output_size(5));
      require_close(y, naive_conv2d(x, conv.weight().value(), conv.bias().value(), stride, pad));
    }
  nn::Conv2d<double> no_bias(2, 4, 2, 1, 0, false, gen);
  require_close(no_bias(x), naive_conv2d(x, no_bias.weight().value(), Td(), 1, 0));
  CHECK_THROWS_WITH(no_bias(Td::zeros(Shape{1, 3, 5, 5})), Contains("Conv2d"));

  const Td z = normal(Shape{2, 3, 7, 7}, gen);
  require_close(nn::AvgPool2d<double>(2)(z), naive_avg_pool2d(z, 2, 2));
  require_close(nn::AvgPool2d<double>(3, 2)(z), naive_avg_pool2d(z, 3, 2));
  CHECK(nn::AvgPool2d<double>(2).stride() == 2);
  CHECK_THROWS_WITH(nn::AvgPool2d<double>(8)(z), Contains("AvgPool2d"));
}

TEST_CASE("nn: initialisers draw PyTorch's distributions from the given generator", "[nn]") {
  Generator gen(12);
  nn::Linear<double> lin(100, 400, true, gen);
  const double bound = 0.1;  // 1 / sqrt(fan_in)
  CHECK(lin.weight().value().array().abs().maxCoeff() <= bound);
  CHECK(lin.bias().value().array().abs().maxCoeff() <= bound);
  CHECK(variance_of(lin.weight().value()) == Approx(bound * bound / 3).epsilon(0.05));

  nn::Conv2d<double> conv(4, 64, 3, 1, 0, true, gen);  // fan_in 36
  CHECK(conv.weight().value().array().abs().maxCoeff() <= 1.0 / 6);
  CHECK(conv.weight().value().array().abs().maxCoeff() > 0.9 / 6);

  // Kaiming normal, fan_out, ReLU: variance 2 / fan_out (out for Linear, out * k * k for conv).
  nn::init::kaiming_normal_fan_out_relu(lin.weight(), gen);
  CHECK(variance_of(lin.weight().value()) == Approx(2.0 / 400).epsilon(0.05));
  CHECK(std::abs(mean_of(lin.weight().value())) < 0.01);
  nn::init::kaiming_normal_fan_out_relu(conv, gen);
  CHECK(variance_of(conv.weight().value()) == Approx(2.0 / (64 * 9)).epsilon(0.1));
  CHECK(conv.bias().value().array().abs().maxCoeff() <= 1.0 / 6);  // biases untouched
  CHECK(nn::init::fan_in(Shape{8, 3, 5, 5}) == 75);
  CHECK(nn::init::fan_out(Shape{8, 3, 5, 5}) == 200);
  CHECK_THROWS_AS(nn::init::fan_in(Shape{4}), ShapeError);

  // Same seed, same model; reset_parameters redraws.
  Generator a(7), b(7);
  nn::Linear<double> la(3, 2, true, a), lb(3, 2, true, b);
  require_close(la.weight().value(), lb.weight().value(), 0.0);
  la.reset_parameters(a);
  CHECK(la.weight().value().array().abs().maxCoeff() <= 1 / std::sqrt(3.0));
  CHECK((la.weight().value().array() != lb.weight().value().array()).any());

  // The init scale multiplies every parameter.
  const Td before = lb.weight().value().clone(), bias_before = lb.bias().value().clone();
  nn::scale_parameters(lb, 8.0);
  Td w8 = before.clone(), b8 = bias_before.clone();
  w8.array() *= 8.0;
  b8.array() *= 8.0;
  require_close(lb.weight().value(), w8);
  require_close(lb.bias().value(), b8);

  nn::init::normal_(lb.weight(), 3.0, 0.0, a);
  require_close(lb.weight().value(), Td::full(Shape{2, 3}, 3.0));
  nn::init::zeros_(lb.bias());
  require_close(lb.bias().value(), Td::zeros(Shape{2}));
}

// docs/nn.md, "Random initialisation and seeds".
TEST_CASE("nn: manual_seed reseeds the default generator that layers draw from", "[nn]") {
  nn::manual_seed(42);
  nn::Linear<double> a(784, 10);
  Generator gen(42);
  nn::Linear<double> b(784, 10, true, gen);
  require_close(a.weight().value(), b.weight().value(), 0.0);
  require_close(a.bias().value(), b.bias().value(), 0.0);
  // The default generator moved on: the next layer differs, until it is reseeded.
  nn::Linear<double> c(784, 10);
  CHECK((c.weight().value().array() != a.weight().value().array()).any());
  nn::manual_seed(42);
  nn::Conv2d<double> d(3, 4, 3);
  Generator gen2(42);
  nn::Conv2d<double> e(3, 4, 3, 1, 0, true, gen2);
  require_close(d.weight().value(), e.weight().value(), 0.0);
  CHECK(&nn::default_generator() == &nn::default_generator());
  nn::manual_seed(0);  // the seed a thread starts with
}

TEST_CASE("nn: every layer's input derivatives pass the harness to second order", "[nn]") {
  Generator gen(13);
  auto through = [](const auto& module) {
    return [&module](const auto& xs) { return module(xs[0]); };
  };
  nn::Linear<double> lin(3, 2, true, gen);
  require_gradcheck(through(lin), {normal(Shape{2, 3}, gen)});
  nn::Conv2d<double> conv(2, 2, 3, 2, 1, true, gen);
  require_gradcheck(through(conv), {normal(Shape{1, 2, 5, 5}, gen)});
  nn::AvgPool2d<double> pool(2);
  require_gradcheck(through(pool), {normal(Shape{1, 2, 4, 4}, gen)});
  nn::Flatten<double> flat;
  require_gradcheck(through(flat), {normal(Shape{2, 2, 3}, gen)});
  nn::ReLU<double> relu;
  require_gradcheck(through(relu), {away_from_zero(Shape{2, 3}, gen)});
  nn::Tanh<double> tanh_layer;
  require_gradcheck(through(tanh_layer), {normal(Shape{2, 3}, gen)});
  nn::GELU<double> gelu_layer;
  require_gradcheck(through(gelu_layer), {normal(Shape{2, 3}, gen)});
  nn::Sigmoid<double> sigmoid_layer;
  require_gradcheck(through(sigmoid_layer), {normal(Shape{2, 3}, gen)});
  nn::Sequential<double> seq(nn::Conv2d<double>(1, 2, 2, 1, 0, true, gen), nn::Tanh<double>(),
                             nn::AvgPool2d<double>(2), nn::Flatten<double>(),
                             nn::Linear<double>(2, 3, true, gen), nn::GELU<double>());
  require_gradcheck(through(seq), {normal(Shape{2, 1, 3, 3}, gen)});
}

TEST_CASE("nn: Linear and Conv2d parameter gradients match the generic ops to second order",
          "[nn]") {
  Generator gen(14);
  // With the parameters as inputs, the layer's expression passes the harness ...
  require_gradcheck([](const auto& xs) { return linear(xs[0], xs[1], xs[2]); },
                    {normal(Shape{2, 3}, gen), normal(Shape{2, 3}, gen), normal(Shape{2}, gen)});
  require_gradcheck(
      [](const auto& xs) {
        return conv2d(xs[0], xs[1], Conv2dOptions{2, 1}) + reshape(xs[2], Shape{1, 2, 1, 1});
      },
      {normal(Shape{1, 2, 4, 4}, gen), normal(Shape{2, 2, 3, 3}, gen), normal(Shape{2}, gen)});

  // ... and the modules' own parameter gradients agree with finite differences, including
  // the GrokAlign-style second-order loss |J^T v|^2 (reverse-over-reverse) and <w, J u>
  // (reverse-over-forward).
  nn::Sequential<double> net(nn::Conv2d<double>(1, 2, 3, 2, 1, true, gen), nn::Tanh<double>(),
                             nn::Flatten<double>(), nn::Linear<double>(8, 3, true, gen));
  const Td x = normal(Shape{2, 1, 4, 4}, gen), v = normal(Shape{2, 3}, gen);
  const Td u = normal(x.shape(), gen), w = normal(Shape{2, 3}, gen);
  require_parameter_gradients(
      net, [&] { return sum(net(Vd(x)) * Vd(v)); }, [&] { return dot(net(x), v); });
  auto jtv = [&](bool create_graph) {
    const Vd xv(x, true);
    const Vd g = grad<double>({net(xv)}, {xv}, {Vd(v)}, {.create_graph = create_graph})[0];
    return sum(g * g);
  };
  require_parameter_gradients(
      net, [&] { return jtv(true); }, [&] { return jtv(false).item(); });
  require_parameter_gradients(
      net, [&] { return sum(net(DV(Vd(x), Vd(u))).tangent() * Vd(w)); },
      [&] { return dot(net(DT(x, u)).tangent(), w); });
}
