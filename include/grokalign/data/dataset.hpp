#pragma once
// A labelled image set as the experiments use it, and the ways they cut and scale it:
// the first n samples, balanced class subsets (the NTK run's digits 0 vs 1), the reference's
// MNIST and CIFAR-10 normalisations, and flattening for MLPs.
#include <algorithm>
#include <string>
#include <vector>

#include "grokalign/core/error.hpp"
#include "grokalign/core/shape.hpp"
#include "grokalign/core/tensor.hpp"

namespace grokalign {

template <Scalar T>
struct LabelledImages {
  Tensor<T> images;             // [N, C, H, W], values in [0, 1] as read
  std::vector<index_t> labels;  // [N], each in [0, classes)
  index_t classes = 0;
  std::string name;    // "mnist", "fashion-mnist", "cifar10", or the caller's
  std::string source;  // the files read, for config.json and messages

  index_t size() const { return static_cast<index_t>(labels.size()); }
};

// The first n samples (images are a view of ds.images; labels are copied).
template <Scalar T>
LabelledImages<T> first(const LabelledImages<T>& ds, index_t n) {
  if (n < 0 || n > ds.size())
    throw Error("first", "asked for the first " + std::to_string(n) + " samples of " + ds.name +
                             ", which has " + std::to_string(ds.size()));
  LabelledImages<T> out;
  out.images = ds.images.rows(0, n);
  out.labels.assign(ds.labels.begin(), ds.labels.begin() + n);
  out.classes = ds.classes;
  out.name = ds.name;
  out.source = ds.source;
  return out;
}

// The first `per_class` samples of each listed class, kept in file order (classes
// interleaved as the file has them), with labels remapped to positions in `classes`:
// balanced_subset(mnist, {0, 1}, 512) gives 1024 digits labelled 0 (zeros) and 1 (ones).
template <Scalar T>
LabelledImages<T> balanced_subset(const LabelledImages<T>& ds, const std::vector<index_t>& classes,
                                  index_t per_class) {
  if (classes.empty()) throw Error("balanced_subset", "no classes listed");
  if (per_class < 0)
    throw Error("balanced_subset", "negative per_class " + std::to_string(per_class));
  std::vector<index_t> slot(static_cast<std::size_t>(std::max<index_t>(ds.classes, 0)), -1);
  for (std::size_t k = 0; k < classes.size(); ++k) {
    const index_t c = classes[k];
    if (c < 0 || c >= ds.classes)
      throw Error("balanced_subset", "class " + std::to_string(c) + " is not one of the " +
                                         std::to_string(ds.classes) + " classes of " + ds.name);
    if (slot[c] >= 0)
      throw Error("balanced_subset", "class " + std::to_string(c) + " is listed twice");
    slot[c] = static_cast<index_t>(k);
  }
  std::vector<index_t> taken(classes.size(), 0), picked;
  picked.reserve(classes.size() * per_class);
  for (index_t i = 0; i < ds.size(); ++i) {
    const index_t k = slot[ds.labels[i]];
    if (k >= 0 && taken[k] < per_class) {
      ++taken[k];
      picked.push_back(i);
    }
  }
  for (std::size_t k = 0; k < classes.size(); ++k)
    if (taken[k] < per_class)
      throw Error("balanced_subset", ds.name + " has only " + std::to_string(taken[k]) +
                                         " samples of class " + std::to_string(classes[k]) + ", " +
                                         std::to_string(per_class) + " requested");
  Shape shape = ds.images.shape();
  shape[0] = static_cast<index_t>(picked.size());
  const index_t row = ds.images.shape().prod(1, ds.images.rank());
  LabelledImages<T> out;
  out.images = Tensor<T>::empty(shape);
  out.labels.reserve(picked.size());
  for (std::size_t j = 0; j < picked.size(); ++j) {
    std::copy_n(ds.images.data() + picked[j] * row, row, out.images.data() + j * row);
    out.labels.push_back(slot[ds.labels[picked[j]]]);
  }
  out.classes = static_cast<index_t>(classes.size());
  out.name = ds.name;
  out.source = ds.source;
  return out;
}

// (x - mean) / std, the reference's MNIST normalisation; a new tensor.
template <Scalar T>
Tensor<T> normalize_mnist(const Tensor<T>& images) {
  Tensor<T> out = Tensor<T>::empty(images.shape());
  out.array() = (images.array() - T(0.1307)) / T(0.3081);
  return out;
}

// Per-channel (x - mean_c) / std_c on [N, 3, H, W], the reference's CIFAR-10 normalisation.
template <Scalar T>
Tensor<T> normalize_cifar10(const Tensor<T>& images) {
  if (images.rank() != 4 || images.shape()[1] != 3)
    detail::throw_shape("normalize_cifar10",
                        "expected images [N, 3, H, W], got " + images.shape().to_string());
  static constexpr double kMean[3] = {0.4914, 0.4822, 0.4465};
  static constexpr double kStd[3] = {0.2471, 0.2435, 0.2616};
  Tensor<T> out = Tensor<T>::empty(images.shape());
  const index_t plane = images.shape()[2] * images.shape()[3];
  for (index_t i = 0; i < images.shape()[0] * 3; ++i) {
    const index_t c = i % 3;
    const T* src = images.data() + i * plane;
    T* dst = out.data() + i * plane;
    const T m = T(kMean[c]), s = T(kStd[c]);
    for (index_t j = 0; j < plane; ++j) dst[j] = (src[j] - m) / s;
  }
  return out;
}

// [N, C, H, W] (or any rank >= 1) as a [N, C*H*W] view, the input of an MLP.
template <Scalar T>
Tensor<T> flatten_images(const Tensor<T>& images) {
  if (images.rank() < 1)
    detail::throw_shape("flatten_images", "a scalar has no samples to flatten");
  return images.reshape(Shape{images.shape()[0], images.shape().prod(1, images.rank())});
}

}  // namespace grokalign
