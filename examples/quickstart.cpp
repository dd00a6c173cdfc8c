// The usage example of README.md, built with the examples so that it stays correct.
#include <grokalign/grokalign.hpp>
namespace ga = grokalign;

int main() {
  ga::Generator gen(0);                                      // reproducible random numbers
  ga::Var<double> x(ga::randn<double>({8, 20}, gen), true);  // a batch of 8 inputs
  ga::Var<double> W1(ga::randn<double>({16, 20}, gen), true);
  ga::Var<double> W2(ga::randn<double>({3, 16}, gen), true);
  auto out = ga::linear(ga::relu(ga::linear(x, W1)), W2);  // [8, 3]

  // GrokAlign: J(x_b)^T v_b for one unit projection per sample, recorded (create_graph)...
  auto v = ga::randn<double>({8, 3}, gen);
  auto u = ga::grad<double>({out}, {x}, {ga::Var<double>(v)}, {.create_graph = true})[0];
  auto penalty = ga::mean(ga::sqrt(ga::maximum(ga::row_sq_norm(u) * 3.0, 1e-8)));
  auto loss = ga::mse(out, ga::Tensor<double>::zeros({8, 3})) + penalty * 1e-3;

  // ...so the loss can be differentiated through it: weight gradients of loss + penalty.
  auto grads = ga::grad<double>({loss}, {W1, W2});
  return grads[0].shape() == W1.shape() ? 0 : 1;
}
