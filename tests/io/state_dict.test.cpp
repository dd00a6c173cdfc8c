// State dicts as directories of .npy files: round trip, all-or-nothing loads, strictness.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <grokalign/io/npy.hpp>
#include <grokalign/io/state_dict.hpp>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "temp_dir.hpp"

using namespace grokalign;
using Catch::Matchers::Contains;
using grokalign_test::TempDir;
namespace fs = std::filesystem;

namespace {

using Named = std::vector<std::pair<std::string, Var<double>>>;

Tensor<double> filled(const Shape& s, double start) {
  auto t = Tensor<double>::empty(s);
  for (index_t i = 0; i < t.numel(); ++i) t.data()[i] = start + 0.25 * static_cast<double>(i);
  return t;
}

// Parameters named the way PyTorch names them, with values that differ per `start`.
Named make_params(double start) {
  return {{"0.weight", Var<double>(filled(Shape{3, 2}, start), true)},
          {"0.bias", Var<double>(filled(Shape{3}, start + 10), true)},
          {"blocks.0.attn.W_K", Var<double>(filled(Shape{2, 2, 4}, start + 20), true)},
          {"scale", Var<double>(filled(Shape{}, start + 30), true)}};
}

std::vector<std::vector<double>> values_of(const Named& named) {
  std::vector<std::vector<double>> out;
  for (const auto& p : named) out.push_back(p.second.value().to_vector());
  return out;
}

// The message of the grokalign::Error that `f` raises; fails if none does.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  FAIL("no grokalign::Error was thrown");
  return {};
}

// Stands in for nn::Module: only named_parameters() is needed.
struct TinyModule {
  Named params = make_params(0.0);
  Named named_parameters() const { return params; }
};
struct MutableOnlyModule {  // named_parameters() without const must work too
  Named params = make_params(0.0);
  Named named_parameters() { return params; }
};

}  // namespace

TEST_CASE("state dict round trip through a directory of .npy files", "[io][state_dict]") {
  TempDir tmp;
  const fs::path dir = tmp / "run" / "step_100";  // save creates missing directories
  const Named saved = make_params(1.0);
  save_state_dict(dir, saved);
  for (const char* f : {"0.weight.npy", "0.bias.npy", "blocks.0.attn.W_K.npy", "scale.npy"})
    CHECK(fs::is_regular_file(dir / f));
  // Each file is an ordinary .npy of the parameter.
  CHECK(load_npy<double>(dir / "0.bias.npy").to_vector() == saved[1].second.value().to_vector());

  Named loaded = make_params(-5.0);
  const Tensor<double> before = loaded[0].second.value();  // a handle to the old storage
  CHECK(load_state_dict(dir, loaded).empty());
  CHECK(values_of(loaded) == values_of(saved));
  for (std::size_t i = 0; i < loaded.size(); ++i)
    CHECK(loaded[i].second.shape() == saved[i].second.shape());
  // Values are replaced in place, so other holders of the tensor see the new values.
  CHECK(before.to_vector() == saved[0].second.value().to_vector());
  CHECK(loaded[0].second.requires_grad());

  // A double checkpoint loads into a float model (and back) through the npy conversion.
  std::vector<std::pair<std::string, Var<float>>> as_float;
  for (const auto& [name, v] : saved)
    as_float.emplace_back(name, Var<float>(Tensor<float>::zeros(v.shape())));
  load_state_dict(dir, as_float);
  CHECK(as_float[0].second.value().at(2, 1) ==
        static_cast<float>(saved[0].second.value().at(2, 1)));
}

TEST_CASE("state dict save and load accept a module with named_parameters()", "[io][state_dict]") {
  TempDir tmp;
  const TinyModule a;
  save_state_dict(tmp.path(), a);
  TinyModule b;
  for (auto& p : b.params) p.second.assign(Tensor<double>::zeros(p.second.shape()));
  load_state_dict(tmp.path(), b);
  CHECK(values_of(b.params) == values_of(a.params));

  MutableOnlyModule c;
  for (auto& p : c.params) p.second.assign(Tensor<double>::zeros(p.second.shape()));
  load_state_dict(tmp.path(), c);
  CHECK(values_of(c.params) == values_of(a.params));
  save_state_dict(tmp / "again", c);
  CHECK(fs::exists(tmp / "again" / "scale.npy"));
}

TEST_CASE("state dict load with a wrong shape names the file and both shapes and changes nothing",
          "[io][state_dict]") {
  TempDir tmp;
  save_state_dict(tmp.path(), make_params(1.0));
  // Overwrite one parameter's file (not the first: earlier ones must not be assigned early).
  save_npy(tmp / "blocks.0.attn.W_K.npy", filled(Shape{4, 4}, 0.0));

  Named target = make_params(7.0);
  const auto before = values_of(target);
  try {
    load_state_dict(tmp.path(), target);
    FAIL("the shape mismatch was not reported");
  } catch (const ShapeError& e) {
    CHECK(e.op() == "load_state_dict");
    CHECK_THAT(e.what(), Contains((tmp / "blocks.0.attn.W_K.npy").string()) &&
                             Contains("holds shape [4, 4]") &&
                             Contains("parameter 'blocks.0.attn.W_K' has shape [2, 2, 4]"));
  }
  CHECK(values_of(target) == before);

  // A corrupt file is caught before anything is assigned, too.
  save_state_dict(tmp.path(), make_params(1.0));
  grokalign_test::write_file(tmp / "scale.npy", "not an npy file");
  CHECK_THAT(error_of([&] { load_state_dict(tmp.path(), target); }),
             Contains("scale.npy") && Contains("not a .npy file"));
  CHECK(values_of(target) == before);
}

TEST_CASE("state dict load names every parameter whose shape is wrong, as PyTorch does",
          "[io][state_dict]") {
  TempDir tmp;
  save_state_dict(tmp.path(), make_params(1.0));
  // Three of the four files have the wrong shape: the first, a middle and the last parameter.
  save_npy(tmp / "0.weight.npy", filled(Shape{2, 3}, 0.0));
  save_npy(tmp / "blocks.0.attn.W_K.npy", filled(Shape{4, 4}, 0.0));
  save_npy(tmp / "scale.npy", filled(Shape{1}, 0.0));

  Named target = make_params(7.0);
  const auto before = values_of(target);
  try {
    load_state_dict(tmp.path(), target);
    FAIL("the shape mismatches were not reported");
  } catch (const ShapeError& e) {
    CHECK(e.op() == "load_state_dict");
    const std::string msg = e.what();
    CHECK_THAT(msg, Contains("size mismatch for 3 parameters"));
    CHECK_THAT(msg, Contains("'" + (tmp / "0.weight.npy").string() + "' holds shape [2, 3]") &&
                        Contains("parameter '0.weight' has shape [3, 2]"));
    CHECK_THAT(msg, Contains("holds shape [4, 4]") &&
                        Contains("parameter 'blocks.0.attn.W_K' has shape [2, 2, 4]"));
    CHECK_THAT(msg, Contains("'" + (tmp / "scale.npy").string() + "' holds shape [1]") &&
                        Contains("parameter 'scale' has shape []"));
    CHECK_THAT(msg, !Contains("'0.bias'"));  // its shape is right
  }
  CHECK(values_of(target) == before);
}

TEST_CASE("state dict load names every missing and every unexpected file", "[io][state_dict]") {
  TempDir tmp;
  save_state_dict(tmp.path(), make_params(1.0));
  fs::remove(tmp / "0.weight.npy");
  fs::remove(tmp / "scale.npy");
  save_npy(tmp / "extra.a.npy", filled(Shape{2}, 0.0));
  save_npy(tmp / "extra.b.npy", filled(Shape{2}, 0.0));
  Named target = make_params(7.0);
  const auto before = values_of(target);
  const std::string msg = error_of([&] { load_state_dict(tmp.path(), target); });
  CHECK_THAT(msg, Contains("no file for parameter '0.weight' (expected 0.weight.npy)") &&
                      Contains("no file for parameter 'scale' (expected scale.npy)") &&
                      Contains("unexpected file(s) 'extra.a.npy', 'extra.b.npy'"));
  CHECK(values_of(target) == before);
}

TEST_CASE("state dict strict mode refuses files that match no parameter", "[io][state_dict]") {
  TempDir tmp;
  save_state_dict(tmp.path(), make_params(1.0));
  save_npy(tmp / "1.weight.npy", filled(Shape{2}, 0.0));
  save_npy(tmp / "head.bias.npy", filled(Shape{2}, 0.0));
  grokalign_test::write_file(tmp / "config.json", "{}");  // not a .npy: always ignored

  Named target = make_params(7.0);
  const auto before = values_of(target);
  const std::string msg = error_of([&] { load_state_dict(tmp.path(), target); });
  CHECK_THAT(msg, Contains("unexpected file(s) '1.weight.npy', 'head.bias.npy'") &&
                      Contains("strict = false"));
  CHECK_THAT(msg, !Contains("config.json"));
  CHECK(values_of(target) == before);

  const auto ignored = load_state_dict(tmp.path(), target, /*strict=*/false);
  CHECK(ignored == std::vector<std::string>{"1.weight.npy", "head.bias.npy"});
  CHECK(values_of(target) == values_of(make_params(1.0)));
}

TEST_CASE("state dict load with a missing file names the parameter and changes nothing",
          "[io][state_dict]") {
  TempDir tmp;
  save_state_dict(tmp.path(), make_params(1.0));
  fs::remove(tmp / "0.bias.npy");
  Named target = make_params(7.0);
  const auto before = values_of(target);
  for (bool strict : {true, false}) {
    const std::string msg = error_of([&] { load_state_dict(tmp.path(), target, strict); });
    CHECK_THAT(msg, Contains("no file for parameter '0.bias' (expected 0.bias.npy)"));
    CHECK(values_of(target) == before);
  }
  CHECK_THAT(error_of([&] { load_state_dict(tmp / "nowhere", target); }),
             Contains("does not exist"));
}

TEST_CASE("state dict refuses names that are not safe file names", "[io][state_dict]") {
  TempDir tmp;
  const Var<double> v(Tensor<double>::zeros(Shape{1}));
  for (const char* bad : {"", ".", "..", "../escape", "a/b", "a\\b", "a:b"}) {
    INFO("name '" << bad << "'");
    const Named named = {{bad, v}};
    CHECK_THROWS_WITH(save_state_dict(tmp.path(), named),
                      Contains("cannot be used as a file name"));
    CHECK_THROWS_WITH(load_state_dict(tmp.path(), named),
                      Contains("cannot be used as a file name"));
  }
  const Named twice = {{"w", v}, {"w", v}};
  CHECK_THROWS_WITH(save_state_dict(tmp.path(), twice), Contains("two parameters are named 'w'"));
  const Named undefined = {{"w", Var<double>()}};
  CHECK_THROWS_WITH(save_state_dict(tmp.path(), undefined), Contains("undefined Var"));
  CHECK(fs::is_empty(tmp.path()));
}

TEST_CASE("a float64 file loads into a float model rounded, but an overflow is refused",
          "[io][state_dict][errors]") {
  TempDir dir;
  save_npy(dir / "w.npy", Tensor<double>::from({3}, {0.1, -1e30, 1.0 / 3}));
  std::vector<std::pair<std::string, Var<float>>> model{
      {"w", Var<float>(Tensor<float>::zeros({3}), true)}};
  load_state_dict(dir.path(), model);
  CHECK(model[0].second.value().to_vector() == std::vector<float>{0.1f, -1e30f, 1.0f / 3});

  save_npy(dir / "w.npy", Tensor<double>::from({3}, {1, 2, 1e300}));
  CHECK_THROWS_WITH(load_state_dict(dir.path(), model),
                    Contains("load_state_dict") && Contains("w.npy") && Contains("element 2"));
  CHECK(model[0].second.value().at(2) == 1.0f / 3);  // unchanged
  // Infinities the file itself holds are loaded as they are.
  const double inf = std::numeric_limits<double>::infinity();
  save_npy(dir / "w.npy", Tensor<double>::from({3}, {1, 2, -inf}));
  load_state_dict(dir.path(), model);
  CHECK(std::isinf(model[0].second.value().at(2)));
}
