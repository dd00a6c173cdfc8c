#pragma once
// The paper's bias-free ReLU MLP trained with MSE, and its GrokAlign step derived by hand
// in plain Eigen (analytic double backward, preallocated buffers). It is the floor any
// engine on Eigen's GEMM can reach, so benchmarks compare the engine against it and a
// test checks that both compute the same gradients.
#include <grokalign/grokalign.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

namespace grokalign::bench {

template <Scalar T>
struct MlpProblem {
  std::vector<index_t> sizes;  // n0 ... nL
  index_t batch;
  Tensor<T> x, target, v;  // v: one unit-norm projection per sample
  std::vector<Tensor<T>> weights;
  T lambda;

  MlpProblem(std::vector<index_t> layer_sizes, index_t batch_size, T init_scale, T lambda_jac,
             std::uint64_t seed = 0)
      : sizes(std::move(layer_sizes)), batch(batch_size), lambda(lambda_jac) {
    Generator gen(seed);
    const index_t C = sizes.back();
    x = randn<T>(Shape{batch, sizes.front()}, gen);
    target = Tensor<T>::zeros(Shape{batch, C});
    for (index_t b = 0; b < batch; ++b) target.data()[b * C + b % C] = T(1);
    v = randn<T>(Shape{batch, C}, gen);
    for (index_t b = 0; b < batch; ++b) v.matrix().row(b).normalize();
    for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
      const T bound = T(1) / std::sqrt(static_cast<T>(sizes[l]));
      Tensor<T> w = rand_uniform<T>(Shape{sizes[l + 1], sizes[l]}, gen, -bound, bound);
      w.array() *= init_scale;
      weights.push_back(w);
    }
  }
  index_t classes() const { return sizes.back(); }
};

// loss = mse(net(x), target) [+ lambda * mean_b sqrt(max(C |J_b^T v_b|^2, 1e-8))] and its
// weight gradients, by hand.
template <Scalar T>
class HandDerivedMlp {
 public:
  using M = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

  explicit HandDerivedMlp(const MlpProblem<T>& p) : p_(p), L_(p.sizes.size() - 1) {
    W_.resize(L_);
    grads.resize(L_);
    act_.resize(L_);
    mask_.resize(L_);
    a_.resize(L_ + 1);
    for (std::size_t l = 0; l < L_; ++l) {
      W_[l] = p.weights[l].matrix();
      grads[l].resize(W_[l].rows(), W_[l].cols());
    }
  }

  // Returns the loss; weight gradients land in `grads`.
  T step(bool align) {
    const auto X = p_.x.matrix();
    const index_t B = p_.batch, C = p_.classes();
    // Forward: act_[l] is the input of layer l, mask_[l] the ReLU pattern after it.
    for (std::size_t l = 0; l < L_; ++l) {
      const bool last = l + 1 == L_;
      M& z = last ? out_ : act_[l + 1];
      if (l == 0)
        z.noalias() = X * W_[0].transpose();
      else
        z.noalias() = act_[l] * W_[l].transpose();
      if (!last) {
        mask_[l] = (z.array() > T(0)).template cast<T>();
        z = z.cwiseMax(T(0));
      }
    }
    const auto Y = p_.target.matrix();
    d_ = (out_ - Y) * (T(2) / static_cast<T>(B * C));
    T loss = (out_ - Y).squaredNorm() / static_cast<T>(B * C);
    // Plain backward.
    for (std::size_t l = L_; l-- > 0;) {
      if (l == 0)
        grads[0].noalias() = d_.transpose() * X;
      else
        grads[l].noalias() = d_.transpose() * act_[l];
      if (l > 0) {
        tmp_.noalias() = d_ * W_[l];
        d_ = tmp_.cwiseProduct(mask_[l - 1]);
      }
    }
    if (!align) return loss;
    // u = J^T v: a_[l] is the cotangent at the output of layer l-1's ReLU.
    a_[L_] = p_.v.matrix();
    for (std::size_t l = L_; l-- > 1;) {
      tmp_.noalias() = a_[l + 1] * W_[l];
      a_[l] = tmp_.cwiseProduct(mask_[l - 1]);
    }
    u_.noalias() = a_[1] * W_[0];
    // d penalty / d u_b = lambda / B * C u_b / sqrt(S_b) where the clamp is inactive.
    T pen = 0;
    for (index_t b = 0; b < B; ++b) {
      const T S = static_cast<T>(C) * u_.row(b).squaredNorm();
      const T r = std::sqrt(std::max(S, T(1e-8)));
      pen += r;
      const T scale = S > T(1e-8) ? p_.lambda * static_cast<T>(C) / (static_cast<T>(B) * r) : T(0);
      u_.row(b) *= scale;
    }
    // Reverse pass over u = a_1 W_0, a_l = (a_{l+1} W_l) * mask_{l-1}.
    grads[0].noalias() += a_[1].transpose() * u_;
    g_.noalias() = u_ * W_[0].transpose();
    for (std::size_t l = 1; l < L_; ++l) {
      g_ = g_.cwiseProduct(mask_[l - 1]);
      grads[l].noalias() += a_[l + 1].transpose() * g_;
      if (l + 1 < L_) {
        tmp_.noalias() = g_ * W_[l].transpose();
        g_.swap(tmp_);
      }
    }
    return loss + p_.lambda * pen / static_cast<T>(B);
  }

  std::vector<M> grads;

 private:
  const MlpProblem<T>& p_;
  std::size_t L_;
  std::vector<M> W_, act_, mask_, a_;
  M out_, d_, tmp_, u_, g_;
};

// The same objective through the engine: forward on Vars, J^T v with create_graph, one
// reverse pass for all weight gradients.
template <Scalar T>
Var<T> engine_objective(const MlpProblem<T>& p, const std::vector<Var<T>>& weights, bool align) {
  Var<T> x(p.x, align);
  Var<T> h = x;
  for (std::size_t l = 0; l < weights.size(); ++l) {
    h = matmul(h, weights[l], false, true);
    if (l + 1 < weights.size()) h = relu(h);
  }
  Var<T> loss = mse(h, p.target);
  if (!align) return loss;
  const Var<T> u = grad<T>({h}, {x}, {Var<T>(p.v)}, {.create_graph = true})[0];
  const Var<T> S = row_sq_norm(u) * static_cast<T>(p.classes());
  return loss + mean(sqrt(maximum(S, T(1e-8)))) * p.lambda;
}

}  // namespace grokalign::bench
