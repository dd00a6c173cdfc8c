#pragma once
// One harness for every differentiable op, first and second order, against central finite
// differences. It needs no test framework: it returns a report that a test asserts on, so
// users can check their own compositions the same way.
//
// The function under test is a generic callable f(const std::vector<X>& inputs) -> X,
// evaluated with X = Tensor (values), Var (reverse mode), Dual<Tensor> (forward mode) and
// Dual<Var> (reverse-over-forward). gradcheck() verifies, with random upstream vectors v,
// tangents u and second-order weights w:
//   value     the four evaluations agree (and match a reference, via check_value)
//   VJP       J^T v against finite differences of <v, f>
//   JVP       J u (Dual) against finite differences of f along u
//   graph JVP J u pushed through the recorded graph equals the Dual JVP
//   adjoint   <u, J^T v> = <J u, v>
// and with second_order:
//   VJP of VJP  reverse-over-reverse: gradient of <w, J^T v> in (x, v) against finite
//               differences (this is PyTorch's gradgradcheck)
//   JVP of VJP  forward-over-reverse: the map (x, v) -> J^T v pushed along (u, dv)
//   VJP of JVP  reverse-over-forward: gradient of <w, J u> in x against finite differences
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "grokalign/core/random.hpp"
#include "grokalign/forward/graph_jvp.hpp"
#include "grokalign/ops/reduction.hpp"
#include "grokalign/reverse/engine.hpp"

namespace grokalign::testing {

struct GradcheckOptions {
  double step = 1e-6;          // central-difference step
  double rtol = 1e-5;          // relative tolerance (against the larger magnitude)
  double atol = 1e-7;          // absolute tolerance
  bool second_order = true;    // also check the three second-order compositions
  std::uint64_t seed = 12345;  // for v, u, w
  int max_failures_reported = 8;
};

struct GradcheckReport {
  bool ok = true;
  int checks = 0;  // number of compared numbers
  std::string message;
};

namespace detail {

template <Scalar T>
T dot(const Tensor<T>& a, const Tensor<T>& b) {
  if (!a.defined() || !b.defined()) return T(0);
  return (a.array() * b.array()).sum();
}

template <Scalar T>
Tensor<T> axpy(const Tensor<T>& x, T h, const Tensor<T>& u) {
  Tensor<T> r = x.clone();
  r.array() += h * u.array();
  return r;
}

class Recorder {
 public:
  Recorder(const GradcheckOptions& o, GradcheckReport& r) : opt_(o), rep_(r) {}
  void compare(const std::string& what, double analytic, double numeric) {
    ++rep_.checks;
    const double scale = std::max(std::abs(analytic), std::abs(numeric));
    if (std::isfinite(analytic) && std::isfinite(numeric) &&
        std::abs(analytic - numeric) <= opt_.atol + opt_.rtol * scale)
      return;
    fail(what + ": analytic " + fmt(analytic) + " vs numeric " + fmt(numeric));
  }
  void fail(const std::string& line) {
    rep_.ok = false;
    if (failures_++ < opt_.max_failures_reported) rep_.message += line + "\n";
  }

 private:
  static std::string fmt(double v) {
    std::ostringstream s;
    s.precision(12);
    s << v;
    return s.str();
  }
  const GradcheckOptions& opt_;
  GradcheckReport& rep_;
  int failures_ = 0;
};

template <Scalar T>
std::vector<Tensor<T>> random_like(const std::vector<Tensor<T>>& xs, Generator& gen) {
  std::vector<Tensor<T>> r;
  for (const auto& x : xs) r.push_back(randn<T>(x.shape(), gen));
  return r;
}

template <Scalar T>
std::vector<Var<T>> leaves(const std::vector<Tensor<T>>& xs) {
  std::vector<Var<T>> v;
  for (const auto& x : xs) v.emplace_back(x, true);
  return v;
}

}  // namespace detail

// Compares f's value on plain tensors with `expected`.
template <class F, Scalar T>
GradcheckReport check_value(F&& f, const std::vector<Tensor<T>>& inputs, const Tensor<T>& expected,
                            double rtol = 1e-10, double atol = 1e-12) {
  GradcheckReport rep;
  GradcheckOptions opt;
  opt.rtol = rtol;
  opt.atol = atol;
  detail::Recorder rec(opt, rep);
  const Tensor<T> y = f(inputs);
  if (!(y.shape() == expected.shape())) {
    rec.fail("value: shape " + y.shape().to_string() + " but expected " +
             expected.shape().to_string());
    return rep;
  }
  for (index_t i = 0; i < y.numel(); ++i)
    rec.compare("value[" + std::to_string(i) + "]", y.data()[i], expected.data()[i]);
  return rep;
}

template <class F, Scalar T>
GradcheckReport gradcheck(F&& f, const std::vector<Tensor<T>>& inputs, GradcheckOptions opt = {}) {
  using detail::axpy;
  using detail::dot;
  GradcheckReport rep;
  detail::Recorder rec(opt, rep);
  Generator gen(opt.seed);
  const T h = static_cast<T>(opt.step);
  const std::size_t k = inputs.size();

  auto eval = [&](const std::vector<Tensor<T>>& xs) { return Tensor<T>(f(xs)); };
  const Tensor<T> y = eval(inputs);
  const Tensor<T> v = randn<T>(y.shape(), gen);
  const std::vector<Tensor<T>> u = detail::random_like(inputs, gen);

  // --- values agree in every mode
  auto xs = detail::leaves(inputs);
  const Var<T> yv = f(xs);
  std::vector<Dual<Tensor<T>>> duals;
  for (std::size_t i = 0; i < k; ++i) duals.emplace_back(inputs[i], u[i]);
  const Dual<Tensor<T>> yd = f(duals);
  if (!(yv.shape() == y.shape()) || !(yd.shape() == y.shape())) {
    rec.fail("value: shapes differ between modes");
    return rep;
  }
  for (index_t i = 0; i < y.numel(); ++i) {
    rec.compare("value (Var) [" + std::to_string(i) + "]", yv.value().data()[i], y.data()[i]);
    rec.compare("value (Dual) [" + std::to_string(i) + "]", yd.primal().data()[i], y.data()[i]);
  }

  // --- VJP against finite differences of <v, f>
  std::vector<Tensor<T>> g(k);
  if (yv.requires_grad()) {
    auto gv = grad<T>({yv}, xs, {Var<T>(v)}, {.create_graph = false, .allow_unused = true});
    for (std::size_t i = 0; i < k; ++i)
      g[i] = gv[i].defined() ? gv[i].value() : Tensor<T>::zeros(inputs[i].shape());
  } else {
    for (std::size_t i = 0; i < k; ++i) g[i] = Tensor<T>::zeros(inputs[i].shape());
  }
  for (std::size_t i = 0; i < k; ++i) {
    for (index_t j = 0; j < inputs[i].numel(); ++j) {
      std::vector<Tensor<T>> p = inputs, m = inputs;
      p[i] = inputs[i].clone();
      m[i] = inputs[i].clone();
      p[i].data()[j] += h;
      m[i].data()[j] -= h;
      const double num = (dot(v, eval(p)) - dot(v, eval(m))) / (2 * h);
      rec.compare("VJP input " + std::to_string(i) + " [" + std::to_string(j) + "]", g[i].data()[j],
                  num);
    }
  }

  // --- JVP (Dual) against finite differences along u; graph JVP; adjoint identity
  std::vector<Tensor<T>> xp(k), xm(k);
  for (std::size_t i = 0; i < k; ++i) {
    xp[i] = axpy(inputs[i], h, u[i]);
    xm[i] = axpy(inputs[i], -h, u[i]);
  }
  const Tensor<T> fp = eval(xp), fm = eval(xm);
  const Tensor<T> jd = yd.tangent().defined() ? yd.tangent() : Tensor<T>::zeros(y.shape());
  const Tensor<T> jg =
      yv.requires_grad() ? jvp_graph<T>({yv}, xs, u)[0] : Tensor<T>::zeros(y.shape());
  for (index_t i = 0; i < y.numel(); ++i) {
    const double num = (fp.data()[i] - fm.data()[i]) / (2 * h);
    rec.compare("JVP [" + std::to_string(i) + "]", jd.data()[i], num);
    rec.compare("graph JVP [" + std::to_string(i) + "]", jg.data()[i], jd.data()[i]);
  }
  double ug = 0;
  for (std::size_t i = 0; i < k; ++i) ug += dot(u[i], g[i]);
  rec.compare("adjoint <u, J^T v> vs <J u, v>", ug, dot(jd, v));

  if (!opt.second_order) return rep;

  // The first-order VJP as a function of (x, v), on plain tensors, for finite differences.
  auto vjp_at = [&](const std::vector<Tensor<T>>& x, const Tensor<T>& vv) {
    auto l = detail::leaves(x);
    const Var<T> out = f(l);
    std::vector<Tensor<T>> r(k);
    if (!out.requires_grad()) {
      for (std::size_t i = 0; i < k; ++i) r[i] = Tensor<T>::zeros(x[i].shape());
      return r;
    }
    auto gg = grad<T>({out}, l, {Var<T>(vv)}, {.create_graph = false, .allow_unused = true});
    for (std::size_t i = 0; i < k; ++i)
      r[i] = gg[i].defined() ? gg[i].value() : Tensor<T>::zeros(x[i].shape());
    return r;
  };
  const std::vector<Tensor<T>> w = detail::random_like(inputs, gen);
  auto weighted = [&](const std::vector<Tensor<T>>& gs) {
    double s = 0;
    for (std::size_t i = 0; i < k; ++i) s += dot(w[i], gs[i]);
    return s;
  };

  // --- VJP of VJP: s(x, v) = <w, J(x)^T v>, its gradient in x and in v.
  {
    auto l = detail::leaves(inputs);
    Var<T> vvar(v, true);
    const Var<T> out = f(l);
    std::vector<Tensor<T>> hx(k);
    Tensor<T> hv = Tensor<T>::zeros(v.shape());
    for (auto& t : hx) t = Tensor<T>();
    if (out.requires_grad()) {
      auto gg = grad<T>({out}, l, {vvar}, {.create_graph = true, .allow_unused = true});
      Var<T> s;
      for (std::size_t i = 0; i < k; ++i)
        if (gg[i].defined()) s = accumulate(s, sum(gg[i] * Var<T>(w[i])));
      if (s.defined() && s.requires_grad()) {
        std::vector<Var<T>> wrt = l;
        wrt.push_back(vvar);
        auto h2 = grad<T>({s}, wrt, {}, {.create_graph = false, .allow_unused = true});
        for (std::size_t i = 0; i < k; ++i) hx[i] = h2[i].defined() ? h2[i].value() : Tensor<T>();
        if (h2[k].defined()) hv = h2[k].value();
      }
    }
    for (std::size_t i = 0; i < k; ++i) {
      if (!hx[i].defined()) hx[i] = Tensor<T>::zeros(inputs[i].shape());
      for (index_t j = 0; j < inputs[i].numel(); ++j) {
        std::vector<Tensor<T>> p = inputs, m = inputs;
        p[i] = inputs[i].clone();
        m[i] = inputs[i].clone();
        p[i].data()[j] += h;
        m[i].data()[j] -= h;
        const double num = (weighted(vjp_at(p, v)) - weighted(vjp_at(m, v))) / (2 * h);
        rec.compare("VJP of VJP, d/dx input " + std::to_string(i) + " [" + std::to_string(j) + "]",
                    hx[i].data()[j], num);
      }
    }
    for (index_t j = 0; j < v.numel(); ++j) {
      Tensor<T> p = v.clone(), m = v.clone();
      p.data()[j] += h;
      m.data()[j] -= h;
      const double num = (weighted(vjp_at(inputs, p)) - weighted(vjp_at(inputs, m))) / (2 * h);
      rec.compare("VJP of VJP, d/dv [" + std::to_string(j) + "]", hv.data()[j], num);
    }
  }

  // --- JVP of VJP (forward-over-reverse): push (u, dv) through the recorded VJP graph.
  {
    const Tensor<T> dv = randn<T>(v.shape(), gen);
    auto l = detail::leaves(inputs);
    Var<T> vvar(v, true);
    const Var<T> out = f(l);
    std::vector<Tensor<T>> tang(k);
    if (out.requires_grad()) {
      auto gg = grad<T>({out}, l, {vvar}, {.create_graph = true, .allow_unused = true});
      std::vector<Var<T>> outs;
      for (std::size_t i = 0; i < k; ++i)
        outs.push_back(gg[i].defined() ? gg[i] : Var<T>(Tensor<T>::zeros(inputs[i].shape())));
      std::vector<Var<T>> wrt = l;
      wrt.push_back(vvar);
      std::vector<Tensor<T>> dirs = u;
      dirs.push_back(dv);
      tang = jvp_graph<T>(outs, wrt, dirs);
    } else {
      for (std::size_t i = 0; i < k; ++i) tang[i] = Tensor<T>::zeros(inputs[i].shape());
    }
    const auto gp = vjp_at(xp, axpy(v, h, dv));
    const auto gm = vjp_at(xm, axpy(v, -h, dv));
    for (std::size_t i = 0; i < k; ++i)
      for (index_t j = 0; j < inputs[i].numel(); ++j)
        rec.compare("JVP of VJP, input " + std::to_string(i) + " [" + std::to_string(j) + "]",
                    tang[i].data()[j], (gp[i].data()[j] - gm[i].data()[j]) / (2 * h));
  }

  // --- VJP of JVP (reverse-over-forward): s(x) = <wo, J(x) u> through Dual<Var>.
  {
    const Tensor<T> wo = randn<T>(y.shape(), gen);
    auto l = detail::leaves(inputs);
    std::vector<Dual<Var<T>>> dl;
    for (std::size_t i = 0; i < k; ++i) dl.emplace_back(l[i], Var<T>(u[i]));
    const Dual<Var<T>> out = f(dl);
    for (index_t i = 0; i < y.numel(); ++i) {
      const double t = out.tangent().defined() ? out.tangent().value().data()[i] : 0.0;
      rec.compare("JVP through Dual<Var> [" + std::to_string(i) + "]", t, jd.data()[i]);
    }
    std::vector<Tensor<T>> hx(k);
    if (out.tangent().defined() && out.tangent().requires_grad()) {
      const Var<T> s = sum(out.tangent() * Var<T>(wo));
      auto h2 = grad<T>({s}, l, {}, {.create_graph = false, .allow_unused = true});
      for (std::size_t i = 0; i < k; ++i) hx[i] = h2[i].defined() ? h2[i].value() : Tensor<T>();
    }
    auto s_at = [&](const std::vector<Tensor<T>>& x) {
      std::vector<Dual<Tensor<T>>> d;
      for (std::size_t i = 0; i < k; ++i) d.emplace_back(x[i], u[i]);
      const Dual<Tensor<T>> o = f(d);
      return o.tangent().defined() ? dot(wo, o.tangent()) : 0.0;
    };
    for (std::size_t i = 0; i < k; ++i) {
      if (!hx[i].defined()) hx[i] = Tensor<T>::zeros(inputs[i].shape());
      for (index_t j = 0; j < inputs[i].numel(); ++j) {
        std::vector<Tensor<T>> p = inputs, m = inputs;
        p[i] = inputs[i].clone();
        m[i] = inputs[i].clone();
        p[i].data()[j] += h;
        m[i].data()[j] -= h;
        rec.compare("VJP of JVP, input " + std::to_string(i) + " [" + std::to_string(j) + "]",
                    hx[i].data()[j], (s_at(p) - s_at(m)) / (2 * h));
      }
    }
  }
  return rep;
}

}  // namespace grokalign::testing
