// The run harness: stats.csv, config.json, resume (bit-exact, refused on a different
// configuration), flags and presets, progress output, and the non-finite guard.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <grokalign/align.hpp>
#include <grokalign/nn.hpp>
#include <grokalign/ops.hpp>
#include <grokalign/optim.hpp>
#include <grokalign/reverse.hpp>
#include <grokalign/run.hpp>

#include "../io/temp_dir.hpp"

using namespace grokalign;
using Catch::Matchers::Contains;
using grokalign_test::read_file;
using grokalign_test::TempDir;

namespace {

run::RunSpec tiny_spec() {
  run::RunSpec spec;
  spec.program = "tiny";
  spec.settings = {{"steps", 8}, {"lr", 0.01}, {"width", 5}};
  spec.data = {{"name", "random"}, {"train", 16}};
  spec.columns = {"step", "train_loss", "penalty"};
  spec.resumable_settings = {"steps"};
  spec.checkpoint_every = 2;
  spec.total_steps = 8;
  return spec;
}

run::CommonOptions quiet_options(const std::filesystem::path& out) {
  run::CommonOptions o;
  o.out = out.string();
  o.quiet = true;
  return o;
}

// A small GrokAlign training loop written the way the example programs use the harness:
// every random draw comes from generators that the checkpoint carries, and the data order
// is reshuffled per step from the data generator.
std::vector<double> train_tiny(const run::CommonOptions& common, std::int64_t steps) {
  run::RunSpec spec = tiny_spec();
  spec.settings["steps"] = steps;
  spec.total_steps = steps;
  run::Run r(common, spec, "unused");
  Generator init(common.seed), data_gen(common.seed + 1), proj_gen(common.seed + 2);
  auto model = nn::make_mlp<double>(6, 5, 3, 3, false, init);
  const auto named = model.named_parameters();
  AdamW<double> opt(model.trainable_parameters(), {.lr = 0.01, .weight_decay = 0.01});
  Generator fixed(123);
  const Tensor<double> x = randn<double>(Shape{16, 6}, fixed);
  const Tensor<double> y = randn<double>(Shape{16, 3}, fixed);
  if (r.resumed()) {
    run::load_parameters(r.checkpoint(), "model.", named);
    run::load_state(r.checkpoint(), "adamw.", opt);
    r.checkpoint().restore("gen.data", data_gen);
    r.checkpoint().restore("gen.proj", proj_gen);
  }
  for (std::int64_t step = r.start_step() + 1; step <= steps; ++step) {
    // A batch of 8 drawn with the data generator.
    std::vector<index_t> rows(8);
    for (auto& i : rows) i = static_cast<index_t>(data_gen.below(16));
    Tensor<double> xb = Tensor<double>::empty(Shape{8, 6}), yb = Tensor<double>::empty(Shape{8, 3});
    for (int i = 0; i < 8; ++i) {
      xb.matrix().row(i) = x.matrix().row(rows[i]);
      yb.matrix().row(i) = y.matrix().row(rows[i]);
    }
    const Var<double> xv(xb, true);
    const Var<double> out = model(xv);
    const Var<double> pen = align::grokalign_penalty_from(out, xv, proj_gen);
    const Var<double> loss = mse(out, yb) + pen * 1e-2;
    opt.zero_grad(true);
    loss.backward(opt.parameters());
    run::check_finite_loss(step, "loss", loss.item());
    run::check_finite_gradients(step, named);
    opt.step();
    r.log({static_cast<double>(step), loss.item(), pen.item()});
    if (r.checkpoint_due(step)) {
      run::Checkpoint c;
      run::save_parameters(c, "model.", named);
      run::save_state(c, "adamw.", opt);
      c.put("gen.data", data_gen);
      c.put("gen.proj", proj_gen);
      r.save_checkpoint(c, step);
    }
  }
  std::vector<double> weights;
  for (const auto& p : model.parameters())
    for (double v : p.value()) weights.push_back(v);
  return weights;
}

}  // namespace

TEST_CASE("a run of 2N steps equals N steps resumed for N more", "[run][resume]") {
  TempDir dir;
  const auto whole = train_tiny(quiet_options(dir / "whole"), 8);
  train_tiny(quiet_options(dir / "split"), 4);
  run::CommonOptions resume = quiet_options(dir / "ignored");
  resume.resume = (dir / "split").string();
  const auto resumed = train_tiny(resume, 8);
  CHECK(resumed == whole);
  CHECK(read_file(dir / "split" / "stats.csv") == read_file(dir / "whole" / "stats.csv"));
  CHECK(run::StatsCsv::read_rows(dir / "whole" / "stats.csv").size() == 8);
  CHECK(std::filesystem::exists(dir / "split" / "resumes.json"));
}

TEST_CASE("resuming from a mid-interval kill loses at most one checkpoint interval",
          "[run][resume]") {
  // Rows logged after the last checkpoint (steps 5 and 6 here, checkpoint at 4) are dropped
  // and logged again, so the file equals the uninterrupted one.
  TempDir dir;
  train_tiny(quiet_options(dir / "whole"), 8);
  train_tiny(quiet_options(dir / "split"), 5);  // checkpoints at 2 and 4, rows up to 5
  CHECK(run::StatsCsv::read_rows(dir / "split" / "stats.csv").size() == 5);
  run::CommonOptions resume = quiet_options("");
  resume.resume = (dir / "split").string();
  train_tiny(resume, 8);
  CHECK(read_file(dir / "split" / "stats.csv") == read_file(dir / "whole" / "stats.csv"));
}

TEST_CASE("config.json records the settings, data, library and threads", "[run]") {
  TempDir dir;
  run::CommonOptions o = quiet_options(dir / "r");
  o.threads = 2;
  o.dtype = "f32";
  { run::Run r(o, tiny_spec(), "unused"); }
  const auto cfg = nlohmann::json::parse(read_file(dir / "r" / "config.json"));
  CHECK(cfg["program"] == "tiny");
  CHECK(cfg["settings"]["lr"] == 0.01);
  CHECK(cfg["data"]["name"] == "random");
  CHECK(cfg["dtype"] == "f32");
  CHECK(cfg["threads"] == 2);
  CHECK(cfg["library"]["version"] == GROKALIGN_PROJECT_VERSION);
  CHECK(cfg["library"].contains("git_commit"));
  CHECK(read_file(dir / "r" / "stats.csv") == "step,train_loss,penalty\n");
}

TEST_CASE("resume refuses another configuration, naming the setting", "[run][resume][errors]") {
  TempDir dir;
  train_tiny(quiet_options(dir / "r"), 2);
  run::CommonOptions o = quiet_options("");
  o.resume = (dir / "r").string();
  o.dtype = "f32";
  REQUIRE_THROWS_WITH(run::Run(o, tiny_spec(), "unused"),
                      Contains("--dtype") && Contains("\"f64\"") && Contains("\"f32\""));
  o.dtype = "f64";
  run::RunSpec wider = tiny_spec();
  wider.settings["width"] = 7;
  REQUIRE_THROWS_WITH(run::Run(o, wider, "unused"), Contains("--width") && Contains("7"));
  // A fresh run into a folder that holds one is refused rather than overwritten.
  REQUIRE_THROWS_WITH(run::Run(quiet_options(dir / "r"), tiny_spec(), "unused"),
                      Contains("--resume"));
  o.resume = (dir / "nothing-here").string();
  REQUIRE_THROWS_WITH(run::Run(o, tiny_spec(), "unused"), Contains("no checkpoint.bin"));
}

TEST_CASE("an output folder that cannot be created is a flag error", "[run][errors]") {
  TempDir dir;
  grokalign_test::write_file(dir / "file", "x");
  REQUIRE_THROWS_AS(run::Run(quiet_options(dir / "file" / "sub"), tiny_spec(), "unused"),
                    run::FlagError);
}

TEST_CASE("stats.csv rows survive a SIGKILL", "[run][resume]") {
  TempDir dir;
  const auto path = dir / "stats.csv";
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    auto s = run::StatsCsv::create(path, {"step", "value"});
    for (int i = 1; i <= 37; ++i) s.write({double(i), 0.1 * i});
    raise(SIGKILL);  // no destructor, no exit handlers: only what reached the kernel
    _exit(3);
  }
  int status = 0;
  waitpid(child, &status, 0);
  REQUIRE(WIFSIGNALED(status));
  const auto rows = run::StatsCsv::read_rows(path);
  REQUIRE(rows.size() == 37);
  CHECK(rows.back()[1] == Approx(3.7));
}

TEST_CASE("stats.csv resume keeps rows up to the step and checks the header", "[run][errors]") {
  TempDir dir;
  const auto path = dir / "stats.csv";
  {
    auto s = run::StatsCsv::create(path, {"epoch", "acc"});
    for (int i = 0; i <= 50; i += 10) s.write({double(i), i / 100.0});
  }
  {
    auto s = run::StatsCsv::resume(path, {"epoch", "acc"}, 20);
    s.write({30, 0.9});
  }
  const auto rows = run::StatsCsv::read_rows(path);
  REQUIRE(rows.size() == 4);
  CHECK(rows[3][1] == 0.9);
  REQUIRE_THROWS_WITH(run::StatsCsv::resume(path, {"epoch", "loss"}, 20),
                      Contains("epoch,acc") && Contains("epoch,loss"));
  REQUIRE_THROWS_AS(run::StatsCsv::create(path, {"a,b"}), Error);
  auto s = run::StatsCsv::create(path, {"a", "b"});
  REQUIRE_THROWS_WITH(s.write({1.0}), Contains("1 values for 2 columns"));
}

namespace {
struct ResumableSettings {
  double lr = 1e-3;
  std::int64_t epochs = 100;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ResumableSettings, lr, epochs)
}  // namespace

TEST_CASE("flags: --resume DIR takes what the command line leaves out from the run", "[run]") {
  TempDir dir;
  grokalign_test::write_file(
      dir / "config.json",
      R"({"settings": {"lr": 0.5, "epochs": 9}, "seed": 4, "dtype": "f32", "preset": "paper"})");
  ResumableSettings s;
  run::CommonOptions c;
  CLI::App app("test");
  run::add_common_flags(app, c);
  run::SettingsFlags<ResumableSettings> flags(app, s);
  flags.add("--lr", &ResumableSettings::lr, "learning rate");
  flags.add("--epochs", &ResumableSettings::epochs, "epochs");
  const std::string folder = dir.path().string();
  std::vector<const char*> argv = {"prog", "--resume", folder.c_str(), "--epochs", "12"};
  REQUIRE(run::parse_flags(app, static_cast<int>(argv.size()), argv.data(), &c) == -1);
  flags.apply(ResumableSettings{}, c);
  CHECK(s.lr == 0.5);     // from the run
  CHECK(s.epochs == 12);  // given again: kept (Run then checks it may change)
  CHECK(c.seed == 4);
  CHECK(c.dtype == "f32");
  CHECK(c.preset == "paper");
  run::CommonOptions none;
  none.resume = (dir / "missing").string();
  REQUIRE_THROWS_WITH(run::inherit_common_flags(app, none), Contains("no config.json"));
  grokalign_test::write_file(dir / "config.json", "{not json");
  run::CommonOptions broken;
  broken.resume = folder;
  REQUIRE_THROWS_AS(run::inherit_common_flags(app, broken), run::FlagError);
}

TEST_CASE("flags: presets fill what the command line did not set", "[run]") {
  struct Settings {
    double lr = 1e-3;
    std::int64_t epochs = 100;
    bool bias = false;
  };
  auto parse = [](std::vector<const char*> argv, Settings& s, run::CommonOptions& common) {
    CLI::App app("test");
    run::add_common_flags(app, common);
    run::SettingsFlags<Settings> flags(app, s);
    flags.add("--lr", &Settings::lr, "learning rate");
    flags.add("--epochs", &Settings::epochs, "epochs");
    flags.add("--bias", &Settings::bias, "bias");
    argv.insert(argv.begin(), "prog");
    const int rc = run::parse_flags(app, static_cast<int>(argv.size()), argv.data());
    flags.apply(Settings{5e-4, 7, true});  // the preset
    return rc;
  };
  Settings s;
  run::CommonOptions c;
  CHECK(parse({"--epochs", "3", "--dtype", "f32", "--seed", "9"}, s, c) == -1);
  CHECK(s.epochs == 3);  // given: kept
  CHECK(s.lr == 5e-4);   // not given: the preset's
  CHECK(s.bias == true);
  CHECK(c.dtype == "f32");
  CHECK(c.seed == 9);
  Settings s2;
  run::CommonOptions c2;
  CHECK(parse({"--bias=false"}, s2, c2) == -1);
  CHECK(s2.bias == false);
  for (std::vector<const char*> bad : {std::vector<const char*>{"--dtype", "f16"},
                                       {"--preset", "huge"},
                                       {"--threads", "0"},
                                       {"--seed", "-1"},
                                       {"--epochs", "many"},
                                       {"--no-such-flag"}}) {
    Settings s3;
    run::CommonOptions c3;
    CHECK(parse(bad, s3, c3) == 2);
  }
  REQUIRE_THROWS_WITH(run::require_positive("--lr", -1), Contains("--lr") && Contains("-1"));
  REQUIRE_THROWS_AS(run::require_nonnegative("--lambda_jac", std::nan("")), run::FlagError);
  CHECK(run::guarded_main([]() -> int { throw run::FlagError("--steps", "must be > 0"); }) == 2);
  CHECK(run::guarded_main([]() -> int { throw Error("x", "y"); }) == 1);
}

TEST_CASE("flags: a program's default preset and dtype; 'default' names the first preset",
          "[run]") {
  auto parse = [](std::vector<const char*> argv, run::CommonOptions& c) {
    CLI::App app("test");
    run::add_common_flags(app, c, {.presets = {"cpu", "paper"}, .dtype = "f32"});
    argv.insert(argv.begin(), "prog");
    return run::parse_flags(app, static_cast<int>(argv.size()), argv.data(), &c);
  };
  run::CommonOptions none;
  REQUIRE(parse({}, none) == -1);
  CHECK(none.preset == "cpu");  // the first preset
  CHECK(none.dtype == "f32");   // the program's, not f64
  run::CommonOptions old_name;
  REQUIRE(parse({"--preset", "default"}, old_name) == -1);
  CHECK(old_name.preset == "cpu");
  run::CommonOptions given;
  REQUIRE(parse({"--preset", "paper", "--dtype", "f64"}, given) == -1);
  CHECK(given.preset == "paper");
  CHECK(given.dtype == "f64");
  // A run started under the old name resumes as the first preset.
  TempDir dir;
  grokalign_test::write_file(dir / "config.json",
                             R"({"seed": 1, "dtype": "f32", "preset": "default"})");
  run::CommonOptions resumed;
  const std::string folder = dir.path().string();
  REQUIRE(parse({"--resume", folder.c_str()}, resumed) == -1);
  CHECK(resumed.preset == "cpu");
  // --help names both defaults.
  CLI::App app("test");
  run::CommonOptions h;
  run::add_common_flags(app, h, {.presets = {"cpu", "paper"}, .dtype = "f32"});
  const std::string help = app.help();
  CHECK_THAT(help, Contains("default: f32"));
  CHECK_THAT(help, Contains("default: cpu"));
}

TEST_CASE("flags: --help shows where --out defaults to and --no_nan_guard without {false}",
          "[run]") {
  CLI::App app("test");
  run::CommonOptions c;
  run::add_common_flags(app, c, {.program = "my_program"});
  const std::string help = app.help();
  INFO(help);
  CHECK_THAT(help, Contains("default: results/my_program/<date>-<time>"));
  // ... which is where run::default_out_dir puts a run of that program.
  CHECK(run::default_out_dir("my_program").parent_path() ==
        std::filesystem::path("results") / "my_program");
  CHECK_THAT(help, Contains("--no_nan_guard"));
  CHECK_THAT(help, !Contains("{false}") && !Contains("{true}"));
  // A program that names no folder still says where its runs go.
  CLI::App plain("test");
  run::CommonOptions p;
  run::add_common_flags(plain, p);
  CHECK_THAT(plain.help(), Contains("default: results/<program>/<date>-<time>"));

  // The flag still turns the guard off, and only when given (or given as true).
  auto guard_after = [](std::vector<const char*> argv) {
    CLI::App a("test");
    run::CommonOptions o;
    run::add_common_flags(a, o);
    argv.insert(argv.begin(), "prog");
    REQUIRE(run::parse_flags(a, static_cast<int>(argv.size()), argv.data()) == -1);
    return o.nan_guard;
  };
  CHECK(guard_after({}) == true);
  CHECK(guard_after({"--no_nan_guard"}) == false);
  CHECK(guard_after({"--no_nan_guard=true"}) == false);
  CHECK(guard_after({"--no_nan_guard=false"}) == true);
}

TEST_CASE("progress writes plain lines off a terminal and nothing when quiet", "[run]") {
  TempDir dir;
  const auto path = dir / "progress.txt";
  std::FILE* f = std::fopen(path.c_str(), "w");
  REQUIRE(f);
  {
    run::Progress p("train", 0, 100, {.plain_interval = 0.0, .stream = f, .terminal = 0});
    p.update(50, {{"loss", 0.25}});
    p.message("halfway");
    p.update(100, {{"loss", 0.125}});
    p.finish();
  }
  {
    run::Progress q("quiet", 0, 10, {.quiet = true, .stream = f, .terminal = 0});
    q.update(10);
    q.finish();
  }
  std::fclose(f);
  const std::string text = read_file(path);
  CHECK_THAT(text, Contains("train 50/100") && Contains("loss 0.25") && Contains("halfway") &&
                       Contains("train 100/100") && Contains("took"));
  CHECK_THAT(text, !Contains("quiet"));
  CHECK(text.find('\r') == std::string::npos);
  CHECK(run::format_duration(3725) == "1h02m");
  CHECK(run::format_duration(65) == "1m05s");
}

TEST_CASE("the non-finite guard names the step and the parameter", "[run][errors]") {
  REQUIRE_THROWS_WITH(run::check_finite_loss(17, "loss", std::nan("")),
                      Contains("step 17") && Contains("nan"));
  Generator g(0);
  auto m = nn::make_mlp<double>(3, 2, 2, 1, false, g);
  const auto named = m.named_parameters();
  Tensor<double> grad = Tensor<double>::zeros(named[1].second.shape());
  grad.data()[1] = std::numeric_limits<double>::infinity();
  Var<double> p = named[1].second;
  p.set_grad(grad);
  REQUIRE_THROWS_WITH(run::check_finite_gradients(4, named),
                      Contains("step 4") && Contains("'" + named[1].first + "'"));
}
