#pragma once
// Helpers shared by the nn tests: naive reference computations, closeness checks, and a
// finite-difference check of a module's parameter gradients (the harness in testing/
// differentiates with respect to inputs only).
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include <grokalign/grokalign.hpp>
#include <grokalign/nn.hpp>
#include <grokalign/testing.hpp>

namespace nn_check {

using grokalign::Generator;
using grokalign::index_t;
using grokalign::Shape;
using Td = grokalign::Tensor<double>;
using Vd = grokalign::Var<double>;
using DT = grokalign::Dual<Td>;
using DV = grokalign::Dual<Vd>;

inline Td normal(const Shape& s, Generator& gen, double stddev = 1.0) {
  return grokalign::randn<double>(s, gen, 0.0, stddev);
}

inline void require_close(const Td& got, const Td& want, double tol = 1e-12) {
  REQUIRE(got.defined());
  REQUIRE(got.shape().to_string() == want.shape().to_string());
  for (index_t i = 0; i < got.numel(); ++i) {
    INFO("element " << i << ": " << got.data()[i] << " vs " << want.data()[i]);
    CHECK(std::abs(got.data()[i] - want.data()[i]) <= tol * (1.0 + std::abs(want.data()[i])));
  }
}

inline double dot(const Td& a, const Td& b) {
  return (a.array() * b.array()).sum();
}

// Runs the full harness (values in all four modes, VJP, JVP, graph JVP, adjoint and, unless
// disabled, the three second-order compositions) on f at `inputs`.
template <class F>
void require_gradcheck(F f, const std::vector<Td>& inputs,
                       grokalign::testing::GradcheckOptions options = {}) {
  const auto report = grokalign::testing::gradcheck(f, inputs, options);
  INFO(report.message);
  CHECK(report.ok);
  CHECK(report.checks > 0);
}

// Compares the gradient of a scalar loss with respect to every entry of every trainable
// parameter of `module` against central differences. `loss_var()` builds the loss on Vars
// (it may itself contain derivatives, e.g. a penalty on J^T v); `loss_value()` evaluates the
// same loss without recording anything that is kept.
template <class LossVar, class LossValue>
void require_parameter_gradients(grokalign::nn::Module<double>& module, LossVar loss_var,
                                 LossValue loss_value, double tol = 1e-6, double step = 1e-6) {
  module.zero_grad();
  const Vd loss = loss_var();
  REQUIRE(loss.requires_grad());
  loss.backward();
  int compared = 0;
  for (auto& [name, p] : module.named_parameters()) {
    if (!p.requires_grad()) continue;
    const Td g = p.grad().defined() ? p.grad().clone() : Td::zeros(p.shape());
    Td value = p.value();  // shares storage: entries are perturbed in place
    for (index_t j = 0; j < value.numel(); ++j) {
      const double saved = value.data()[j];
      value.data()[j] = saved + step;
      const double up = loss_value();
      value.data()[j] = saved - step;
      const double down = loss_value();
      value.data()[j] = saved;
      const double numeric = (up - down) / (2 * step);
      INFO(name << "[" << j << "]: analytic " << g.data()[j] << " vs numeric " << numeric);
      CHECK(std::abs(g.data()[j] - numeric) <= tol * (1.0 + std::abs(numeric)));
      ++compared;
    }
  }
  CHECK(compared > 0);
}

}  // namespace nn_check
