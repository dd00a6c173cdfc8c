// The snippets of docs/tensor.md, compiled and run with the examples so that they stay
// correct: Tensor construction, element access, views, Eigen interop, printing, Var basics
// and grad-mode scopes. Each `// [name]` ... `// [name]` region appears verbatim in the
// document (tests/docs/tensor_doc.test.cpp checks that). Exits non-zero if an expectation
// written next to a snippet fails.
#include <grokalign/distributed/communicator.hpp>
#include <grokalign/grokalign.hpp>

#include <cstdio>
#include <iostream>
#include <sstream>

namespace ga = grokalign;

namespace {
int failures = 0;
void expect(bool ok, const char* what) {
  if (!ok) {
    std::printf("FAILED: %s\n", what);
    ++failures;
  }
}
}  // namespace

int main() {
  // Under mpirun rank 0 alone runs this tour: it has nothing to share out over ranks.
  if (grokalign::distributed::launcher_rank() > 0) return 0;
  // [construction]
  using Tensor = ga::Tensor<double>;         // or ga::Tensor<float>
  Tensor a = Tensor::from({2, 3}, {1, 2, 3,  // row-major values
                                   4, 5, 6});
  Tensor z = Tensor::zeros({2, 3});           // also ones, full(shape, v), scalar(v)
  Tensor e = Tensor::empty({4});              // uninitialised
  ga::Generator gen(0);                       // seeded xoshiro256**
  Tensor r = ga::randn<double>({2, 3}, gen);  // N(0, 1); rand_uniform for U(0, 1)
  // Shapes: rank(), dim(axis) (negative counts from the end), numel(), to_string().
  std::cout << a.shape().to_string() << " rank " << a.rank() << " last dim " << a.dim(-1)
            << " numel " << a.numel() << "\n";  // [2, 3] rank 2 last dim 3 numel 6
  // [construction]
  expect(z.numel() == 6 && e.numel() == 4 && r.shape() == a.shape(), "construction");

  // [access]
  double x12 = a.at(1, 2);       // 6: checked multi-index (t(i, j) does not exist)
  a.at(0, 0) = 10;               // at() on a non-const tensor returns a reference
  double s = ga::sum(a).item();  // item(): the value of a one-element tensor
  double* raw = a.data();        // contiguous row-major storage; a.begin()/end() too
  std::vector<double> copy = a.to_vector();
  // [access]
  expect(x12 == 6 && s == 30 && raw[0] == 10 && copy.size() == 6, "access");

  // [views]
  Tensor b = a;                  // a copy SHARES storage (like NumPy and torch)
  Tensor top = a.rows(0, 1);     // rows [0, 1): a view of shape [1, 3]
  Tensor flat = a.reshape({6});  // a view with a new shape, same element count
  Tensor own = a.clone();        // an independent copy
  top.at(0, 1) = -1;             // writes through to a, b and flat
  // [views]
  expect(a.at(0, 1) == -1 && b.at(0, 1) == -1 && flat.at(1) == -1 && own.at(0, 1) == 2,
         "views share storage");

  // [eigen]
  // matrix(): a row-major Eigen::Map [prod of leading axes, last axis]; array(): flat.
  Eigen::MatrixXd m = a.matrix() * a.matrix().transpose();  // any Eigen expression
  a.array() *= 2.0;                                         // writes in place
  Tensor from_eigen = Tensor::from_matrix(m);               // copies into a new tensor
  // [eigen]
  expect(from_eigen.shape() == ga::Shape{2, 2} && a.at(1, 2) == 12, "eigen interop");

  // [printing]
  std::cout << Tensor::from({2, 2}, {1, -2.5, 3, 40}) << "\n";
  // [[   1, -2.5],
  //  [   3,   40]]
  std::string text = ga::to_string(r, {.precision = 3});  // fewer digits
  // [printing]
  std::ostringstream os;
  os << Tensor::from({2, 2}, {1, -2.5, 3, 40});
  expect(os.str() == "[[   1, -2.5],\n [   3,   40]]" && !text.empty(), "printing");

  // [argmax]
  Tensor logits = Tensor::from({2, 3}, {0.1, 2.0, -1.0, 3.0, 0.5, 0.2});
  ga::Indices predicted = ga::argmax(logits, -1);  // {1, 0}: indices, not differentiable
  Tensor best = ga::max(logits, -1);               // {2.0, 3.0}: differentiable values
  // [argmax]
  expect(predicted[0] == 1 && predicted[1] == 0 && best.at(1) == 3.0, "argmax");

  // [var]
  using Var = ga::Var<double>;
  Var w(Tensor::from({3}, {1, 2, 3}), /*requires_grad=*/true);  // a leaf
  Var y = ga::sum(w * w);     // recorded: y.requires_grad() is true
  y.backward();               // accumulates dy/dw into w.grad()
  Tensor g = w.grad();        // {2, 4, 6}
  double y_value = y.item();  // 14; y.value() is the Tensor
  // grad() returns gradients instead of accumulating them (torch.autograd.grad):
  std::vector<Var> dw = ga::grad<double>({ga::sum(w * w * w)}, {w});  // {3, 12, 27}
  Var frozen = w.detach();     // same values, cut from the graph
  w.set_requires_grad(false);  // only on leaves
  // [var]
  expect(g.at(2) == 6 && y_value == 14 && dw[0].value().at(1) == 12 && !frozen.requires_grad() &&
             !w.requires_grad(),
         "var");

  // [no-grad]
  Var p(Tensor::from({2}, {1, 2}), true);
  {
    ga::NoGradGuard no_grad;                 // as `with torch.no_grad():`
    Var q = p * 2.0;                         // value only: nothing recorded
    std::cout << q.requires_grad() << "\n";  // 0
  }
  Var q = p * 2.0;  // recorded again after the scope
  // ga::GradModeGuard(bool) sets recording on or off for a scope; GradMode::enabled() tells.
  // [no-grad]
  expect(q.requires_grad() && ga::GradMode::enabled(), "no-grad");

  std::printf("tensor_tour: %s\n", failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
