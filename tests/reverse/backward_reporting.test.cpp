// backward_reporting: loss.backward(params) that reports each parameter as soon as its
// gradient is final (what lets a data-parallel step start reducing the last layers'
// gradients while the first layers' are still being formed). Checked: every parameter is
// reported exactly once; when reported, its gradient already equals the final one; the
// gradients equal plain backward's bit for bit; a plain MLP's layers are reported last
// first; with the GrokAlign penalty's double backward too; a parameter the loss does not use
// is reported at the end, without a gradient.
#include <catch2/catch.hpp>
#include <grokalign/grokalign.hpp>

#include <vector>

using namespace grokalign;

namespace {

struct Reports {
  std::vector<Var<double>> params;
  std::vector<std::size_t> order;
  std::vector<Tensor<double>> at_report;
  void operator()(std::size_t i) {
    order.push_back(i);
    at_report[i] = params[i].grad().defined() ? params[i].grad().clone() : Tensor<double>();
  }
};

Var<double> loss_of(nn::Sequential<double>& model, const Tensor<double>& x, const Tensor<double>& t,
                    bool penalised, Generator& proj) {
  const Var<double> xv(x, penalised);
  const Var<double> out = model(xv);
  Var<double> loss = mse(out, t);
  if (penalised) loss = loss + align::grokalign_penalty_from(out, xv, proj) * 0.1;
  return loss;
}

}  // namespace

TEST_CASE("backward_reporting reports each parameter once, when its gradient is final",
          "[reverse][distributed]") {
  for (const bool penalised : {false, true}) {
    INFO("GrokAlign penalty: " << penalised);
    Generator init(3), data(4);
    auto model = nn::make_mlp<double>(6, 5, 3, 2, /*bias=*/true, init);
    auto params = model.trainable_parameters();
    const Tensor<double> x = randn<double>({7, 6}, data), t = randn<double>({7, 2}, data);

    // Plain backward's gradients, the reference.
    Generator proj_a(9);
    for (auto& p : params) p.zero_grad();
    loss_of(model, x, t, penalised, proj_a).backward(params);
    std::vector<Tensor<double>> expected;
    for (const auto& p : params) expected.push_back(p.grad().clone());

    for (auto& p : params) p.zero_grad();
    Generator proj_b(9);
    Reports reports{params, {}, std::vector<Tensor<double>>(params.size())};
    backward_reporting(loss_of(model, x, t, penalised, proj_b),
                       std::span<const Var<double>>(params), reports);
    REQUIRE(reports.order.size() == params.size());
    std::vector<int> times(params.size(), 0);
    for (std::size_t i : reports.order) ++times[i];
    for (std::size_t i = 0; i < params.size(); ++i) {
      CHECK(times[i] == 1);
      REQUIRE(reports.at_report[i].defined());
      // Final when reported, and the same gradient as plain backward, bit for bit.
      CHECK((reports.at_report[i].array() == params[i].grad().array()).all());
      CHECK((params[i].grad().array() == expected[i].array()).all());
    }
    if (!penalised) {
      // Backward forms the last layer's gradients first: the first layer's weight comes last.
      CHECK(reports.order.front() >= params.size() - 2);
      CHECK(reports.order.back() <= 1);
    }
  }
}

TEST_CASE("backward_reporting reports an unused parameter at the end, without a gradient",
          "[reverse][distributed]") {
  Var<double> w(Tensor<double>::full({3}, 2.0), true), unused(Tensor<double>::ones({2}), true);
  const Var<double> x(Tensor<double>::full({3}, 1.5));
  const std::vector<Var<double>> params = {unused, w};
  Reports reports{params, {}, std::vector<Tensor<double>>(2)};
  backward_reporting(sum(w * x), std::span<const Var<double>>(params), reports);
  REQUIRE(reports.order == std::vector<std::size_t>{1, 0});
  CHECK_FALSE(unused.grad().defined());
  CHECK(w.grad().data()[0] == 1.5);
  CHECK_THROWS_WITH(backward_reporting(sum(w * x), std::span<const Var<double>>(), reports),
                    Catch::Contains("no parameters given"));
}
