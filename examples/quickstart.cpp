// The usage example of README.md, built with the examples so that it stays correct.
#include <grokalign/grokalign.hpp>
namespace ga = grokalign;

int main() {
  ga::Generator gen(0);                                      // reproducible random numbers
  ga::Var<double> x(ga::randn<double>({8, 20}, gen), true);  // a batch of 8 inputs
  ga::Var<double> W1(ga::randn<double>({16, 20}, gen), true);
  ga::Var<double> W2(ga::randn<double>({3, 16}, gen), true);
  auto out = ga::linear(ga::relu(ga::linear(x, W1)), W2);  // [8, 3]

  // GrokAlign: the batch mean of the Jacobian norm |J(x_b)|_F, estimated from J^T v for one
  // random projection v per sample, with that backward pass recorded (create_graph)...
  auto penalty = ga::align::grokalign_penalty_from(out, x, gen);
  auto loss = ga::mse(out, ga::Tensor<double>::zeros({8, 3})) + penalty * 1e-3;

  // ...so the loss can be differentiated through it: weight gradients of loss + penalty.
  auto grads = ga::grad<double>({loss}, {W1, W2});
  return grads[0].shape() == W1.shape() ? 0 : 1;
}
