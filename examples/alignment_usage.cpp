// The usage example of docs/alignment.md: one GrokAlign training step on a small ReLU MLP,
// one step on the Jacobian-alignment penalty, then the alignment diagnostics. Built with the
// examples so the documentation compiles.
#include <grokalign/distributed/communicator.hpp>
#include <grokalign/grokalign.hpp>

#include <cstdio>

namespace ga = grokalign;

int main() {
  // Under mpirun rank 0 alone runs this tour: it has nothing to share out over ranks.
  if (grokalign::distributed::launcher_rank() > 0) return 0;
  ga::Generator gen(0);
  const ga::Tensor<double> x = ga::randn<double>({32, 20}, gen);  // a batch of 32 inputs
  const ga::Tensor<double> y = ga::one_hot<double>(ga::Indices(std::vector<ga::index_t>(32, 1)), 4);
  std::vector<ga::Var<double>> w = {ga::Var<double>(ga::randn<double>({16, 20}, gen) * 0.3, true),
                                    ga::Var<double>(ga::randn<double>({4, 16}, gen) * 0.3, true)};
  // Any generic callable is a model; lift<X> presents each parameter in the evaluation
  // type (Var for reverse mode, Dual for forward mode, Tensor for plain values).
  auto model = [&](const auto& in) {
    using X = std::decay_t<decltype(in)>;
    return ga::linear(ga::relu(ga::linear(in, ga::lift<X>(w[0]))), ga::lift<X>(w[1]));
  };

  // Training step: forward once on an input that requires grad, then add the penalty.
  const ga::Var<double> xv(x, true);
  const ga::Var<double> out = model(xv);
  const ga::Var<double> penalty = ga::align::grokalign_penalty_from(out, xv, gen);
  const ga::Var<double> loss = ga::mse(out, y) + penalty * 1e-3;
  const auto grads = ga::grad<double>({loss}, w);  // weight gradients, through J^T v
  for (std::size_t i = 0; i < w.size(); ++i) {
    ga::Tensor<double> wi = w[i].value();  // shares storage: update in place
    wi.array() -= 0.1 * grads[i].value().array();
  }

  // Or train on alignment itself: mean_b (1 - JA_b) with JA_b = |J x_b|^2 / (|x_b|^2 |J|_F^2)
  // (centroid_alignment_penalty_from(out, x) trains on the centroid's cosine with x instead).
  const ga::Var<double> xa(x, true);
  const ga::Var<double> out_a = model(xa);
  const ga::Var<double> misalignment = ga::align::jacobian_alignment_penalty_from(out_a, xa, gen);
  const ga::Var<double> loss_a = ga::mse(out_a, y) + misalignment * 0.1;
  const auto grads_a = ga::grad<double>({loss_a}, w);  // through J^T v and J x
  for (std::size_t i = 0; i < w.size(); ++i) {
    ga::Tensor<double> wi = w[i].value();
    wi.array() -= 0.1 * grads_a[i].value().array();
  }

  // Diagnostics.
  const auto c = ga::align::centroids<double>(model, x);
  const auto pc = ga::align::pc1<double>(model, x);
  const auto ja = ga::align::jacobian_alignment<double>(model, x);  // exact: C backward passes
  std::printf("penalty %.4f  mean alignment %.4f  mean |c| %.4f  PC1 %.4f\n", penalty.item(),
              c.alignment.array().mean(), c.norm.array().mean(), pc.mean);
  std::printf("misalignment penalty %.4f  mean Jacobian alignment %.4f\n", misalignment.item(),
              ja.mean);
  return 0;
}
