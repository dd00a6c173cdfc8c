#pragma once
// Matrix products (2-D and batched) with transposes as flags: C = op(A) op(B). The VJP of
// a product is again a product with flags, so no transpose is ever copied and the double
// backward of a linear layer is three GEMMs, as the arithmetic requires.
#include "grokalign/detail/kernels/matmul.hpp"
#include "grokalign/ops/layout.hpp"

namespace grokalign {

template <Differentiable X>
X matmul(const X& a, const X& b, bool transpose_a = false, bool transpose_b = false);
template <Differentiable X>
X gram(const X& w, bool of_columns = false);

namespace rules {

template <Scalar T>
struct Matmul : RuleBase {
  static constexpr const char* kName = "matmul";
  struct Params {
    bool ta, tb;
  };
  static Tensor<T> forward(const Params& p, const Tensor<T>* in) {
    return kernels::matmul(in[0], in[1], p.ta, p.tb);
  }
  template <class X>
  static X jvp(const Params& p, const X* t, const X* in, const X&) {
    X r;
    if (t[0].defined()) r = matmul(t[0], in[1], p.ta, p.tb);
    if (t[1].defined()) r = accumulate(r, matmul(in[0], t[1], p.ta, p.tb));
    return r;
  }
  template <class X>
  static void vjp(const Params& p, const X& gy, const X* in, const X&, const bool* need, X* gx) {
    const X& a = in[0];
    const X& b = in[1];
    const bool a_batched = a.rank() > 2, b_batched = b.rank() > 2;
    if (need[0]) {
      X g = p.ta ? matmul(b, gy, p.tb, true) : matmul(gy, b, false, !p.tb);
      gx[0] = reduce_to(g, a.shape());  // sums over the batch when A was shared
    }
    if (need[1]) {
      if (a_batched && !b_batched && !p.ta) {
        // B shared by a batch of row-major A: one tall GEMM over the flattened batch.
        const index_t k = a.shape()[a.rank() - 1], n = gy.shape()[gy.rank() - 1];
        const X a2 = reshape(a, Shape{a.numel() / k, k});
        const X g2 = reshape(gy, Shape{gy.numel() / n, n});
        gx[1] = p.tb ? matmul(g2, a2, true, false) : matmul(a2, g2, true, false);
      } else {
        X g = p.tb ? matmul(gy, a, true, p.ta) : matmul(a, gy, !p.ta, false);
        gx[1] = reduce_to(g, b.shape());
      }
    }
  }
};

// The Gram matrix of a 2-D W: of its rows, W W^T, or of its columns, W^T W. The value of
// matmul(w, w, ...) at 3/4 of its FLOPs (symmetry), and a VJP that knows both factors are
// W: one GEMM, (G' + G'^T) W, where a product of two inputs would form two.
template <Scalar T>
struct Gram : RuleBase {
  static constexpr const char* kName = "gram";
  struct Params {
    bool of_columns;
  };
  static Tensor<T> forward(const Params& p, const Tensor<T>* in) {
    if (in[0].rank() != 2)
      detail::throw_shape(kName, "needs a 2-D tensor, got shape " + in[0].shape().to_string());
    return kernels::gram(in[0], p.of_columns);
  }
  template <class X>
  static X symmetrised(const X& m) {
    return m + transpose(m);
  }
  template <class X>
  static X jvp(const Params& p, const X* t, const X* in, const X&) {
    // d(W W^T) = dW W^T + W dW^T, the sum of a product and its transpose.
    return symmetrised(matmul(t[0], in[0], p.of_columns, !p.of_columns));
  }
  template <class X>
  static void vjp(const Params& p, const X& gy, const X* in, const X&, const bool*, X* gx) {
    gx[0] = p.of_columns ? matmul(in[0], symmetrised(gy)) : matmul(symmetrised(gy), in[0]);
  }
};

}  // namespace rules

template <Differentiable X>
X gram(const X& w, bool of_columns) {
  return apply_op<rules::Gram<scalar_of<X>>>({of_columns}, std::array<X, 1>{w});
}

template <Differentiable X>
X matmul(const X& a, const X& b, bool transpose_a, bool transpose_b) {
  return apply_op<rules::Matmul<scalar_of<X>>>({transpose_a, transpose_b}, std::array<X, 2>{a, b});
}

// x W^T (+ bias): PyTorch's Linear with W of shape [out, in].
template <Differentiable X>
X linear(const X& x, const X& weight) {
  return matmul(x, weight, false, true);
}
template <Differentiable X>
X linear(const X& x, const X& weight, const X& bias) {
  return matmul(x, weight, false, true) + bias;
}

}  // namespace grokalign
