#pragma once
// The MNIST digits as the paper's MLP runs feed them: normalised ((x - 0.1307) / 0.3081)
// and flattened to [n, 784], either the first n of each split (the 1024/1024 runs) or a
// balanced subset of some classes (the NTK run's 0 vs 1), with a record for config.json
// saying what was read.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "grokalign/data.hpp"

namespace grokalign::run {

template <Scalar T>
struct FlatImages {
  Tensor<T> x;                  // [n, 784], normalised
  std::vector<index_t> labels;  // [n]
  index_t size() const { return static_cast<index_t>(labels.size()); }
};

template <Scalar T>
struct FlatMnist {
  FlatImages<T> train, test;
  nlohmann::json record;  // name, source, sizes: config.json's "data"
};

namespace detail {

template <Scalar T>
FlatImages<T> flatten_normalised(const LabelledImages<T>& ds) {
  return {normalize_mnist(flatten_images(ds.images)), ds.labels};
}

}  // namespace detail

// The first n_train training and n_test test digits. `data_dir` is the --data_dir flag.
template <Scalar T>
FlatMnist<T> load_flat_mnist_first(const std::string& data_dir, index_t n_train, index_t n_test) {
  const auto dir = resolve_data_dir(data_dir);
  const auto train = load_dataset<T>("mnist", Split::kTrain, dir);
  const auto test = load_dataset<T>("mnist", Split::kTest, dir);
  FlatMnist<T> out{detail::flatten_normalised(first(train, n_train)),
                   detail::flatten_normalised(first(test, n_test)),
                   {}};
  out.record = {{"name", "mnist"},
                {"source", train.source + "; " + test.source},
                {"subset", "first n of each split"},
                {"train", n_train},
                {"test", n_test},
                {"normalisation", "(x - 0.1307) / 0.3081"}};
  return out;
}

// `train_per_class` digits of each listed class from the training split (relabelled 0, 1,
// ... in the order listed), and from the test split as many per class as every listed class
// has, up to `test_per_class`.
template <Scalar T>
FlatMnist<T> load_flat_mnist_balanced(const std::string& data_dir,
                                      const std::vector<index_t>& classes, index_t train_per_class,
                                      index_t test_per_class) {
  const auto dir = resolve_data_dir(data_dir);
  const auto train = load_dataset<T>("mnist", Split::kTrain, dir);
  const auto test = load_dataset<T>("mnist", Split::kTest, dir);
  index_t test_n = test_per_class;
  for (index_t c : classes)
    test_n = std::min<index_t>(
        test_n, static_cast<index_t>(std::count(test.labels.begin(), test.labels.end(), c)));
  FlatMnist<T> out{detail::flatten_normalised(balanced_subset(train, classes, train_per_class)),
                   detail::flatten_normalised(balanced_subset(test, classes, test_n)),
                   {}};
  out.record = {{"name", "mnist"},
                {"source", train.source + "; " + test.source},
                {"subset", "balanced classes"},
                {"classes", classes},
                {"train_per_class", train_per_class},
                {"test_per_class", test_n},
                {"normalisation", "(x - 0.1307) / 0.3081"}};
  return out;
}

}  // namespace grokalign::run
