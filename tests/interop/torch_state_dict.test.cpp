// scripts/torch-state-dict against a real PyTorch: a model written by torch.save loads
// here with the values PyTorch wrote and computes what PyTorch computes, and a model saved
// here loads into PyTorch and does the same. PyTorch is optional (Debian's python3-torch,
// for /usr/bin/python3): without it the tests say how to install it and pass.
#include <sys/wait.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <grokalign/core/random.hpp>
#include <grokalign/io/npy.hpp>
#include <grokalign/io/state_dict.hpp>
#include <grokalign/nn/models.hpp>
#include <string>
#include <vector>

#include "../io/temp_dir.hpp"

#ifndef GROKALIGN_SOURCE_DIR
#error "GROKALIGN_SOURCE_DIR (the repository root, a string) must be defined to find scripts/"
#endif

using namespace grokalign;
using Catch::Matchers::Contains;
using grokalign_test::read_file;
using grokalign_test::TempDir;
using grokalign_test::write_file;
namespace fs = std::filesystem;

namespace {

// Debian's python3-torch installs for this interpreter; the python3 on PATH may be
// another build (pyenv, venv) without it.
constexpr const char* kPython = "/usr/bin/python3";

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string script() {
  return quoted(std::string(GROKALIGN_SOURCE_DIR) + "/scripts/torch-state-dict");
}

// Runs a shell command with stdout and stderr in `log`; returns its exit status (-1 when it
// did not exit normally).
int run(const std::string& command, const fs::path& log) {
  const int status = std::system((command + " >" + quoted(log.string()) + " 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Runs the script with stdout to a throwaway file and stderr in `err`.
int run_script(const std::string& args, const fs::path& out, const fs::path& err) {
  const std::string command =
      script() + " " + args + " >" + quoted(out.string()) + " 2>" + quoted(err.string());
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool torch_available() {
  static const bool available =
      std::system((std::string(kPython) + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0;
  return available;
}

// Runs Python source (written to a file in `dir`) with `dir` as its only argument.
int run_python(const TempDir& dir, const std::string& name, const std::string& source,
               std::string& output) {
  const fs::path file = dir / (name + ".py"), log = dir / (name + ".log");
  write_file(file, source);
  const int rc = run(
      std::string(kPython) + " " + quoted(file.string()) + " " + quoted(dir.path().string()), log);
  output = read_file(log);
  return rc;
}

#define SKIP_WITHOUT_TORCH()                                                            \
  do {                                                                                  \
    if (!torch_available()) {                                                           \
      WARN(                                                                             \
          "python3-torch is not installed: skipping the PyTorch interop test (apt-get " \
          "install python3-torch)");                                                    \
      SUCCEED();                                                                        \
      return;                                                                           \
    }                                                                                   \
  } while (false)

// Parameter k (in state-dict order) of the model below holds, at flat C-order index i,
// ((5 i + 3 k) mod 11 - 5) / 8: both signs, so ReLU keeps some units and drops others, and
// exact in float32, so "equal" means bit-equal on both sides.
float known_value(int k, index_t i) {
  return static_cast<float>((5 * i + 3 * k) % 11 - 5) / 8.0f;
}

// Writes model.pt (with 0.weight stored transposed, i.e. non-contiguous, as a saved
// weight.t() would be), x.npy (a fixed input) and torch's outputs for it: y32.npy from the
// float32 model, y64.npy from the same model in float64.
constexpr const char* kWriteTorchModel = R"PY(
import os, sys
import numpy as np
import torch

d = sys.argv[1]
model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
with torch.no_grad():
    for k, p in enumerate(model.parameters()):
        i = torch.arange(p.numel())
        p.copy_((((5 * i + 3 * k) % 11 - 5).float() / 8).reshape(p.shape))
state = model.state_dict()
assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias"], list(state)
state["0.weight"] = state["0.weight"].t().contiguous().t()
assert not state["0.weight"].is_contiguous()
torch.save(state, os.path.join(d, "model.pt"))
x = torch.linspace(-1, 1, 20).reshape(5, 4)
np.save(os.path.join(d, "x.npy"), x.numpy())
with torch.no_grad():
    np.save(os.path.join(d, "y32.npy"), model(x).numpy())
    np.save(os.path.join(d, "y64.npy"), model.double()(x.double()).numpy())
)PY";

// Checks, in PyTorch, the .pt files the C++ side converted: f64.pt from a double model
// and f32.pt from a float model, each against the .npy folder it came from and against
// the outputs grokalign computed (y_f64.npy, y_f32.npy) on x.npy.
constexpr const char* kCheckInTorch = R"PY(
import os, sys
import numpy as np
import torch

d = sys.argv[1]
x = np.load(os.path.join(d, "x.npy"))
for tag, dtype, tol in (("f64", torch.float64, 1e-12), ("f32", torch.float32, 1e-5)):
    state = torch.load(os.path.join(d, tag + ".pt"), map_location="cpu")
    names = ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert sorted(state) == sorted(names), f"{tag}: keys {list(state)}"
    for name in names:
        t = state[name]
        assert t.dtype == dtype, f"{tag}: {name} has dtype {t.dtype}"
        want = torch.from_numpy(np.load(os.path.join(d, tag, name + ".npy")))
        assert torch.equal(t, want), f"{tag}: {name} differs from its .npy file"
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    model = model.to(dtype)
    model.load_state_dict(state)  # strict: every key present, no extra ones
    with torch.no_grad():
        y = model(torch.from_numpy(x).to(dtype))
    y_ga = torch.from_numpy(np.load(os.path.join(d, "y_" + tag + ".npy")))
    assert torch.allclose(y, y_ga, rtol=tol, atol=tol), f"{tag}: torch {y} vs grokalign {y_ga}"
print("ok")
)PY";

template <Scalar T>
void check_close(const Tensor<T>& got, const Tensor<T>& want, double tol) {
  REQUIRE(got.shape() == want.shape());
  for (index_t i = 0; i < got.numel(); ++i) {
    INFO("element " << i << ": " << got.data()[i] << " vs " << want.data()[i]);
    CHECK(std::abs(static_cast<double>(got.data()[i]) - static_cast<double>(want.data()[i])) <=
          tol * (1.0 + std::abs(static_cast<double>(want.data()[i]))));
  }
}

// Loads the converted folder into an MLP of scalar T and checks values and outputs.
template <Scalar T>
void check_loaded_model(const TempDir& dir, const fs::path& folder, const std::string& y_file,
                        double tol) {
  Generator gen(1);
  auto mlp = nn::make_mlp<T>(4, 3, 2, 2, /*bias=*/true, gen);
  REQUIRE(load_state_dict(folder, mlp).empty());
  int k = 0;
  for (const auto& [name, param] : mlp.named_parameters()) {
    INFO("parameter " << name);
    const Tensor<T> value = param.value();
    for (index_t i = 0; i < value.numel(); ++i) {
      INFO("element " << i);
      CHECK(value.data()[i] == static_cast<T>(known_value(k, i)));
    }
    ++k;
  }
  CHECK(k == 4);
  const auto x = load_npy<T>(dir / "x.npy", Shape{5, 4});
  check_close(mlp(x), load_npy<T>(dir / y_file, Shape{5, 2}), tol);
}

}  // namespace

TEST_CASE("torch-state-dict to-npy: a PyTorch model loads here and computes what torch does",
          "[interop]") {
  SKIP_WITHOUT_TORCH();
  TempDir dir;
  std::string output;
  const int python_rc = run_python(dir, "write_model", kWriteTorchModel, output);
  INFO("python: " << output);
  REQUIRE(python_rc == 0);

  const fs::path folder = dir / "npy";
  const int rc =
      run_script("to-npy " + quoted((dir / "model.pt").string()) + " " + quoted(folder.string()),
                 dir / "out.txt", dir / "err.txt");
  INFO("stderr: " << read_file(dir / "err.txt"));
  REQUIRE(rc == 0);
  for (const char* name : {"0.weight", "0.bias", "2.weight", "2.bias"})
    CHECK(fs::is_regular_file(folder / (std::string(name) + ".npy")));
  // float32 stays float32 on disk: the header names '<f4'.
  CHECK_THAT(read_file(folder / "0.weight.npy"), Contains("'descr': '<f4'"));

  // Into a float model: the weights bit for bit, the outputs within float rounding. Into a
  // double model: float32 widened exactly, so the outputs match torch's float64 ones.
  // (Not SECTIONs: Catch would rerun the conversion, and PyTorch, for each.)
  check_loaded_model<float>(dir, folder, "y32.npy", 1e-5);
  check_loaded_model<double>(dir, folder, "y64.npy", 1e-12);
}

TEST_CASE("torch-state-dict to-pt: a grokalign model loads into PyTorch and computes the same",
          "[interop]") {
  SKIP_WITHOUT_TORCH();
  TempDir dir;
  const auto x = Tensor<double>::from(
      Shape{3, 4}, {0.5, -1.0, 2.0, 0.25, -0.75, 1.5, -0.125, 1.0, 0.0, -2.0, 0.375, 3.0});
  save_npy(dir / "x.npy", x);

  Generator gen(7);
  auto mlp64 = nn::make_mlp<double>(4, 3, 2, 2, /*bias=*/true, gen);
  save_state_dict(dir / "f64", mlp64);
  save_npy(dir / "y_f64.npy", mlp64(x));
  auto mlp32 = nn::make_mlp<float>(4, 3, 2, 2, /*bias=*/true, gen);
  save_state_dict(dir / "f32", mlp32);
  save_npy(dir / "y_f32.npy", mlp32(load_npy<float>(dir / "x.npy")));

  for (const char* tag : {"f64", "f32"}) {
    const int rc = run_script("to-pt " + quoted((dir / tag).string()) + " " +
                                  quoted((dir / (std::string(tag) + ".pt")).string()),
                              dir / "out.txt", dir / "err.txt");
    INFO("to-pt " << tag << ": " << read_file(dir / "err.txt"));
    REQUIRE(rc == 0);
  }
  std::string output;
  const int rc = run_python(dir, "check", kCheckInTorch, output);
  INFO("python: " << output);
  CHECK(rc == 0);
  CHECK_THAT(output, Contains("ok"));
}

TEST_CASE("torch-state-dict: bad input gets one line on stderr and exit status 2", "[interop]") {
  SKIP_WITHOUT_TORCH();
  TempDir dir;
  std::string output;
  const int python_rc = run_python(dir, "write_bad", R"PY(
import os, sys
import torch
d = sys.argv[1]
torch.save([torch.zeros(2)], os.path.join(d, "list.pt"))
torch.save({"w": torch.zeros(2), "steps": torch.zeros(2, dtype=torch.int64)},
           os.path.join(d, "int.pt"))
torch.save({"model": {"w": torch.ones(2, 2)}, "epoch": 3}, os.path.join(d, "checkpoint.pt"))
)PY",
                                   output);
  INFO("python: " << output);
  REQUIRE(python_rc == 0);
  write_file(dir / "junk.pt", "this is not a torch file");
  fs::create_directory(dir / "empty");
  write_file(dir / "empty" / "notes.txt", "no .npy here");

  auto check_refused = [&](const std::string& args, const std::string& expected) {
    INFO("torch-state-dict " << args);
    CHECK(run_script(args, dir / "out.txt", dir / "err.txt") == 2);
    const std::string err = read_file(dir / "err.txt");
    CHECK_THAT(err, Contains(expected));
    CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  };
  const auto p = [&](const char* name) { return quoted((dir / name).string()); };
  check_refused(std::string("to-npy ") + p("missing.pt") + " " + p("out"), "no such file");
  check_refused(std::string("to-npy ") + p("junk.pt") + " " + p("out"),
                "not a file torch.save wrote");
  check_refused(std::string("to-npy ") + p("list.pt") + " " + p("out"), "not a state dict");
  check_refused(std::string("to-npy ") + p("int.pt") + " " + p("out"),
                "parameter 'steps' has dtype int64");
  check_refused(std::string("to-pt ") + p("empty") + " " + p("x.pt"), "no .npy files");
  check_refused(std::string("to-pt ") + p("missing") + " " + p("x.pt"), "no such directory");
  // Nothing was written by the refused conversions.
  CHECK_FALSE(fs::exists(dir / "out"));
  CHECK_FALSE(fs::exists(dir / "x.pt"));

  SECTION("a training checkpoint converts the state dict it holds, and says so") {
    REQUIRE(run_script("to-npy " + p("checkpoint.pt") + " " + p("ck"), dir / "out.txt",
                       dir / "err.txt") == 0);
    CHECK_THAT(read_file(dir / "err.txt"), Contains("under 'model'"));
    const auto w = load_npy<double>(dir / "ck" / "w.npy", Shape{2, 2});
    CHECK(w.to_vector() == std::vector<double>{1, 1, 1, 1});
  }
}
