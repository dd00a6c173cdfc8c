#include <cmath>
#include <cstdio>
#include <grokalign/grokalign.hpp>
#include <vector>
// consumer [DATA]: a gradient, and with DATA (a folder grokalign-fetch-data wrote) the MNIST
// digits loaded from it and one cross-entropy on BatchIterator labels.
int main(int argc, char** argv) {
  using namespace grokalign;
  Var<double> x(Tensor<double>::from({3}, {1.0, 2.0, 3.0}), true);
  Var<double> y = sum(x * x);
  auto g = grad({y}, {x});
  const double* d = g[0].value().data();
  bool ok = d[0] == 2.0 && d[1] == 4.0 && d[2] == 6.0;
  if (argc > 1) {
    const auto train = load_dataset<double>("mnist", Split::kTrain, argv[1]);
    Generator gen(0);
    BatchIterator<double> batches(flatten_images(train.images), train.labels, {.batch_size = 8},
                                  gen);
    batches.next();
    const Tensor<double> logits = Tensor<double>::zeros(Shape{batches.batch_size(), 10});
    const double ce = cross_entropy(logits, batches.labels()).item();  // log(10) for zeros
    ok = ok && train.size() == 40 && std::abs(ce - std::log(10.0)) < 1e-12;
    std::printf("consumer: %lld training digits from %s\n", static_cast<long long>(train.size()),
                argv[1]);
  }
  std::printf("consumer: %s\n", ok ? "ok" : "wrong");
  return ok ? 0 : 1;
}
