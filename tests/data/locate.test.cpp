// Finding data sets by name: the data folder's precedence (flag, $GROKALIGN_DATA, "data"),
// loading MNIST-style and CIFAR-10 folders the test writes, and the messages that say how
// to get a missing data set. Loads the real converted MNIST when scripts/fetch-data has run.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <grokalign/data/locate.hpp>
#include <optional>
#include <string>
#include <vector>

#include "../io/temp_dir.hpp"

using namespace grokalign;
using Catch::Matchers::Contains;
using grokalign_test::TempDir;
using grokalign_test::write_file;

namespace {

// Sets an environment variable for one scope, restoring the old value after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// The four MNIST files in `dir`: gzip-compressed under the .gz names, or (gzip false) raw
// IDX under the names without .gz, as gunzip leaves them.
void write_mnist_like(const std::filesystem::path& dir, index_t train, index_t test,
                      bool gzip = true) {
  std::filesystem::create_directories(dir);
  const std::string ext = gzip ? ".gz" : "";
  for (auto [prefix, n] : {std::pair{"train", train}, std::pair{"t10k", test}}) {
    std::vector<std::uint8_t> px(static_cast<std::size_t>(n * 784), 17), lb(n);
    for (index_t i = 0; i < n; ++i) lb[i] = static_cast<std::uint8_t>(i % 10);
    write_idx(dir / (std::string(prefix) + "-images-idx3-ubyte" + ext), {n, 28, 28}, px, gzip);
    write_idx(dir / (std::string(prefix) + "-labels-idx1-ubyte" + ext), {n}, lb, gzip);
  }
}

std::string cifar_bytes(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    s.push_back(static_cast<char>(i % 10));
    s.append(3072, static_cast<char>(i));
  }
  return s;
}

// $GROKALIGN_DATA or "data", else the nearest data/ above the working directory that holds
// mnist/ (ctest runs the suite inside the build tree).
std::filesystem::path real_data_dir() {
  const auto d = resolve_data_dir("");
  if (std::getenv("GROKALIGN_DATA") || dataset_available("mnist", d)) return d;
  std::error_code ec;
  for (auto p = std::filesystem::current_path(ec); !p.empty(); p = p.parent_path()) {
    if (dataset_available("mnist", p / "data")) return p / "data";
    if (p == p.parent_path()) break;
  }
  return d;
}

}  // namespace

TEST_CASE("The data folder is the flag, else GROKALIGN_DATA, else data", "[data]") {
  {
    ScopedEnv env("GROKALIGN_DATA", "/env/dir");
    CHECK(resolve_data_dir("/flag/dir") == std::filesystem::path("/flag/dir"));
    CHECK(resolve_data_dir("") == std::filesystem::path("/env/dir"));
  }
  ScopedEnv env("GROKALIGN_DATA", nullptr);
  CHECK(resolve_data_dir("") == std::filesystem::path("data"));
}

TEST_CASE("Data sets load by name from the data folder", "[data]") {
  TempDir dir;
  CHECK(!dataset_available("mnist", dir.path()));
  CHECK(!dataset_available("cifar10", dir.path()));
  write_mnist_like(dir / "mnist", 12, 5);
  write_mnist_like(dir / "fashion-mnist", 3, 2);
  CHECK(dataset_available("mnist", dir.path()));
  const auto train = load_dataset<double>("mnist", Split::kTrain, dir.path());
  CHECK(train.images.shape() == Shape{12, 1, 28, 28});
  CHECK(train.labels[11] == 1);
  CHECK(train.name == "mnist");
  CHECK_THAT(train.source, Contains("train-images-idx3-ubyte.gz"));
  CHECK(load_dataset<float>("mnist", Split::kTest, dir.path(), 4).size() == 4);
  // The data folder's own fashion-mnist/ comes before Debian's.
  CHECK(load_dataset<float>("fashion-mnist", Split::kTrain, dir.path()).size() == 3);

  // CIFAR-10 in DIR/cifar-10-batches-bin/ or in DIR itself.
  for (const auto& d : {dir / "cifar-10-batches-bin", dir / "flat"}) {
    std::filesystem::create_directories(d);
    for (int i = 1; i <= 5; ++i)
      write_file(d / ("data_batch_" + std::to_string(i) + ".bin"), cifar_bytes(2));
    write_file(d / "test_batch.bin", cifar_bytes(3));
  }
  for (const auto& root : {dir.path(), dir / "flat"}) {
    CHECK(dataset_available("cifar10", root));
    const auto c = load_dataset<float>("cifar10", Split::kTrain, root);
    CHECK(c.images.shape() == Shape{10, 3, 32, 32});
    CHECK(c.labels == std::vector<index_t>{0, 1, 0, 1, 0, 1, 0, 1, 0, 1});
    CHECK(load_dataset<float>("cifar10", Split::kTrain, root, 3).size() == 3);
    CHECK(load_dataset<float>("cifar10", Split::kTest, root).size() == 3);
  }
}

TEST_CASE("Gunzipped IDX files are found beside the .gz names; .gz wins when both exist",
          "[data]") {
  TempDir dir;
  write_mnist_like(dir / "mnist", 6, 4, /*gzip=*/false);
  write_mnist_like(dir / "fashion-mnist", 3, 2, /*gzip=*/false);
  CHECK(dataset_available("mnist", dir.path()));
  const auto raw = load_dataset<double>("mnist", Split::kTrain, dir.path());
  CHECK(raw.size() == 6);
  CHECK(raw.labels[5] == 5);
  CHECK_THAT(raw.source, Contains("train-images-idx3-ubyte,") && !Contains(".gz"));
  CHECK(load_dataset<float>("mnist", Split::kTest, dir.path()).size() == 4);
  CHECK(load_dataset<float>("fashion-mnist", Split::kTrain, dir.path()).size() == 3);

  // Both forms present (with different contents): the .gz files are read.
  write_mnist_like(dir / "mnist", 9, 7, /*gzip=*/true);
  const auto both = load_dataset<double>("mnist", Split::kTrain, dir.path());
  CHECK(both.size() == 9);
  CHECK_THAT(both.source,
             Contains("train-images-idx3-ubyte.gz") && Contains("train-labels-idx1-ubyte.gz"));

  // Each file is looked up on its own: compressed images beside gunzipped labels.
  TempDir mixed;
  write_mnist_like(mixed / "mnist", 5, 3, /*gzip=*/true);
  write_mnist_like(mixed / "raw", 5, 3, /*gzip=*/false);
  const auto labels = mixed / "mnist" / "train-labels-idx1-ubyte";
  std::filesystem::remove(mixed / "mnist" / "train-labels-idx1-ubyte.gz");
  std::filesystem::copy_file(mixed / "raw" / "train-labels-idx1-ubyte", labels);
  const auto m = load_dataset<double>("mnist", Split::kTrain, mixed.path());
  CHECK(m.size() == 5);
  CHECK_THAT(m.source, Contains("train-images-idx3-ubyte.gz") &&
                           Contains("train-labels-idx1-ubyte") &&
                           !Contains("labels-idx1-ubyte.gz"));
  // Without a labels file in either form the split is missing.
  std::filesystem::remove(labels);
  CHECK(!dataset_available("mnist", mixed.path()));
  CHECK_THROWS_AS(load_dataset<double>("mnist", Split::kTrain, mixed.path()), DataNotFound);
}

TEST_CASE("Missing data sets say what fetches them", "[data][errors]") {
  TempDir dir;
  // The message gives the absolute folder searched (a relative data folder is made absolute
  // against the working directory), how the folder is chosen, and the installed fetch command.
  const std::string relative = "grokalign-no-such-data-folder";
  const auto abs = (std::filesystem::current_path() / relative).lexically_normal();
  for (const auto& [data_dir, searched] :
       {std::pair{dir.path(), dir.path()}, std::pair{std::filesystem::path(relative), abs}}) {
    try {
      load_dataset<double>("mnist", Split::kTrain, data_dir);
      FAIL("no DataNotFound for " << data_dir);
    } catch (const DataNotFound& e) {
      const std::string m = e.what();
      CHECK_THAT(
          m, Contains("mnist (train split) not found in '" + (searched / "mnist").string() + "'"));
      CHECK_THAT(m, Contains("train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz (or "
                             "both without .gz)"));
      CHECK_THAT(m, Contains("$GROKALIGN_DATA") && Contains("--data_dir"));
      CHECK_THAT(m, Contains("run `grokalign-fetch-data --data_dir " + searched.string() + "`"));
      CHECK_THAT(m, Contains("cmake --install") && Contains("scripts/fetch-data"));
    }
  }
  REQUIRE_THROWS_WITH(load_dataset<double>("cifar10", Split::kTest, dir.path()),
                      Contains("cannot be downloaded") && Contains("data_batch_1.bin") &&
                          Contains("test_batch.bin") && Contains("cifar-10-batches-bin"));
  if (!std::filesystem::exists(debian_fashion_mnist_dir() / "train-images-idx3-ubyte.gz"))
    REQUIRE_THROWS_WITH(load_dataset<double>("fashion-mnist", Split::kTrain, dir.path()),
                        Contains("apt-get install dataset-fashion-mnist"));
  REQUIRE_THROWS_WITH(load_dataset<double>("svhn", Split::kTrain, dir.path()),
                      Contains("unknown data set 'svhn'"));
  // Half a CIFAR-10 training set is missing, not a smaller data set.
  for (int i = 1; i <= 4; ++i)
    write_file(dir / ("data_batch_" + std::to_string(i) + ".bin"), cifar_bytes(1));
  CHECK(!dataset_available("cifar10", dir.path()));
  REQUIRE_THROWS_AS(load_dataset<double>("cifar10", Split::kTrain, dir.path()), DataNotFound);
}

TEST_CASE("The real data sets, when present, have their documented sizes", "[data]") {
  const auto data_dir = real_data_dir();
  if (dataset_available("mnist", data_dir)) {
    const auto train = load_dataset<float>("mnist", Split::kTrain, data_dir);
    const auto test = load_dataset<float>("mnist", Split::kTest, data_dir, 1024);
    CHECK(train.size() == 7996);
    CHECK(test.size() == 1024);
    std::vector<index_t> per_class(10, 0);
    for (index_t l : train.labels) ++per_class[l];
    CHECK(per_class == std::vector<index_t>{800, 901, 792, 825, 784, 690, 811, 856, 755, 782});
    CHECK(train.images.shape() == Shape{7996, 1, 28, 28});
    const auto [lo, hi] = std::minmax_element(train.images.begin(), train.images.end());
    CHECK(*lo == 0.0f);
    CHECK(*hi == 1.0f);
    CHECK(balanced_subset(train, {0, 1}, 512).size() == 1024);
  } else {
    WARN("MNIST not found in '" << data_dir.string() << "' (run scripts/fetch-data): skipped");
  }
  if (dataset_available("fashion-mnist", data_dir)) {
    const auto test = load_dataset<float>("fashion-mnist", Split::kTest, data_dir, 100);
    CHECK(test.size() == 100);
    CHECK(test.images.shape() == Shape{100, 1, 28, 28});
  } else {
    WARN("Fashion-MNIST not found (apt-get install dataset-fashion-mnist): skipped");
  }
}
