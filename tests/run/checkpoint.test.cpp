// Checkpoint files: round trips, optimiser and generator state, and refusal of corrupt,
// truncated and mismatched files with the file named.
#include <catch2/catch.hpp>
#include <grokalign/nn.hpp>
#include <grokalign/ops.hpp>
#include <grokalign/optim.hpp>
#include <grokalign/reverse.hpp>
#include <grokalign/run/checkpoint.hpp>
#include <grokalign/run/state.hpp>

#include "../io/temp_dir.hpp"

using namespace grokalign;
using Catch::Matchers::Contains;
using grokalign_test::read_file;
using grokalign_test::TempDir;
using grokalign_test::write_file;

namespace {

run::Checkpoint sample_checkpoint() {
  Generator gen(7);
  run::Checkpoint c;
  c.meta()["step"] = 12;
  c.put("w64", randn<double>(Shape{3, 4}, gen));
  c.put("w32", randn<float>(Shape{5}, gen));
  c.put("order", std::vector<std::int64_t>{3, 1, 2, 0});
  c.put("empty", Tensor<double>::zeros(Shape{0, 3}));
  gen.normal();  // leaves a cached normal in the state
  c.put("gen", gen);
  return c;
}

}  // namespace

TEST_CASE("checkpoint round trip keeps every entry bit for bit", "[run][resume]") {
  TempDir dir;
  const run::Checkpoint c = sample_checkpoint();
  c.save(dir / "c.bin");
  REQUIRE_FALSE(std::filesystem::exists(dir / "c.bin.tmp"));
  const run::Checkpoint back = run::Checkpoint::load(dir / "c.bin");
  CHECK(back.meta()["step"] == 12);
  CHECK(back.names() == c.names());
  const auto a = c.tensor<double>("w64"), b = back.tensor<double>("w64");
  CHECK(a.to_vector() == b.to_vector());
  CHECK(back.tensor<float>("w32").to_vector() == c.tensor<float>("w32").to_vector());
  CHECK(back.integers<std::int64_t>("order") == std::vector<std::int64_t>{3, 1, 2, 0});
  CHECK(back.tensor<double>("empty").shape() == Shape{0, 3});
  // The restored generator continues the same stream, including the cached normal.
  Generator g1(0), g2(0);
  c.restore("gen", g1);
  back.restore("gen", g2);
  for (int i = 0; i < 5; ++i) CHECK(g1.normal() == g2.normal());
}

TEST_CASE("checkpoint refuses truncated and corrupt files, naming them", "[run][resume][errors]") {
  TempDir dir;
  const auto path = dir / "c.bin";
  sample_checkpoint().save(path);
  const std::string bytes = read_file(path);
  const auto bad = dir / "bad.bin";
  // Every truncation point, and a flipped byte in the header, the payload and the checksum.
  for (std::size_t n :
       {std::size_t{0}, std::size_t{5}, std::size_t{17}, bytes.size() / 2, bytes.size() - 1}) {
    write_file(bad, bytes.substr(0, n));
    REQUIRE_THROWS_MATCHES(run::Checkpoint::load(bad), run::CheckpointError,
                           Catch::Matchers::Predicate<run::CheckpointError>(
                               [](const run::CheckpointError& e) {
                                 return std::string(e.what()).find("bad.bin") != std::string::npos;
                               },
                               "names the file"));
  }
  for (std::size_t at : {std::size_t{20}, bytes.size() - 30, bytes.size() - 2}) {
    std::string flipped = bytes;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x5a);
    write_file(bad, flipped);
    REQUIRE_THROWS_WITH(run::Checkpoint::load(bad), Contains("bad.bin") && Contains("corrupt"));
  }
  write_file(bad, "PK\x03\x04 this is a zip, not a checkpoint....");
  REQUIRE_THROWS_WITH(run::Checkpoint::load(bad), Contains("not a grokalign checkpoint"));
  REQUIRE_THROWS_WITH(run::Checkpoint::load(dir / "missing.bin"),
                      Contains("cannot open") && Contains("missing.bin"));
}

TEST_CASE("checkpoint entries are checked for name, dtype and shape", "[run][resume][errors]") {
  const run::Checkpoint c = sample_checkpoint();
  REQUIRE_THROWS_WITH(c.tensor<double>("nope"), Contains("no entry 'nope'"));
  REQUIRE_THROWS_WITH(c.tensor<float>("w64"), Contains("f8") && Contains("--dtype"));
  const Shape other{4, 3};
  REQUIRE_THROWS_WITH(c.tensor<double>("w64", &other), Contains("[3, 4]") && Contains("[4, 3]"));
  Generator g;
  REQUIRE_THROWS_AS(c.restore("order", g), run::CheckpointError);
}

TEST_CASE("optimiser, filter and parameters resume bit-exactly", "[run][resume]") {
  // Train 3 steps, checkpoint, train 3 more (reference); then restore the checkpoint into a
  // freshly built model and optimiser and train the same 3 steps: identical weights.
  auto build = [](std::uint64_t seed) {
    Generator g(seed);
    return nn::make_mlp<double>(6, 5, 2, 3, false, g);
  };
  Generator data(1);
  const Tensor<double> x = randn<double>(Shape{8, 6}, data);
  const Tensor<double> y = randn<double>(Shape{8, 3}, data);
  auto train = [&](nn::Sequential<double>& m, AdamW<double>& opt, GrokfastEma<double>& filt,
                   int steps) {
    for (int s = 0; s < steps; ++s) {
      opt.zero_grad(true);
      mse(m(Var<double>(x)), y).backward(opt.parameters());
      filt.apply();
      opt.step();
    }
  };
  auto m1 = build(3);
  AdamW<double> o1(m1.trainable_parameters(), {.lr = 1e-2});
  GrokfastEma<double> f1(m1.trainable_parameters(), 0.8, 0.1);
  train(m1, o1, f1, 3);
  run::Checkpoint c;
  run::save_parameters(c, "model.", m1.named_parameters());
  run::save_state(c, "adamw.", o1);
  run::save_state(c, "grokfast.", f1);
  train(m1, o1, f1, 3);

  auto m2 = build(99);  // different initial weights: all must come from the checkpoint
  AdamW<double> o2(m2.trainable_parameters(), {.lr = 1e-2});
  GrokfastEma<double> f2(m2.trainable_parameters(), 0.8, 0.1);
  const run::Checkpoint back = run::Checkpoint::parse(c.serialize(), "<memory>");
  run::load_parameters(back, "model.", m2.named_parameters());
  run::load_state(back, "adamw.", o2);
  run::load_state(back, "grokfast.", f2);
  CHECK(o2.state(0).step == 3);
  train(m2, o2, f2, 3);
  for (std::size_t i = 0; i < m1.parameters().size(); ++i)
    CHECK(m1.parameters()[i].value().to_vector() == m2.parameters()[i].value().to_vector());
}

TEST_CASE("a checkpoint of another model is refused whole", "[run][resume][errors]") {
  Generator g(0);
  auto small = nn::make_mlp<double>(4, 3, 2, 2, false, g);
  auto large = nn::make_mlp<double>(4, 5, 2, 2, false, g);
  run::Checkpoint c;
  run::save_parameters(c, "model.", small.named_parameters());
  const auto before = large.parameters()[0].value().to_vector();
  REQUIRE_THROWS_WITH(run::load_parameters(c, "model.", large.named_parameters()),
                      Contains("model.0.weight") && Contains("[3, 4]") && Contains("[5, 4]"));
  CHECK(large.parameters()[0].value().to_vector() == before);
  auto biased = nn::make_mlp<double>(4, 3, 2, 2, true, g);
  REQUIRE_THROWS_WITH(run::load_parameters(c, "model.", biased.named_parameters()),
                      Contains("no entry 'model.0.bias'"));
}

TEST_CASE("an unwritable checkpoint folder is a clear error and keeps the old file",
          "[run][resume][errors]") {
  TempDir dir;
  const auto path = dir / "c.bin";
  sample_checkpoint().save(path);
  const std::string before = read_file(path);
  REQUIRE_THROWS_WITH(sample_checkpoint().save(dir / "no-such-folder" / "c.bin"),
                      Contains("cannot write") && Contains("no-such-folder"));
  CHECK(read_file(path) == before);
}
