#pragma once
// Command-line flags through CLI11: the set every program takes (CommonOptions), settings
// structs bound flag by flag with presets underneath (SettingsFlags), and one-line errors.
//
// Presets: a program's settings start from a preset ("cpu", the default: a size that shows
// the experiment's effect on a 2-core CPU; "paper", the reference; or the --smoke size); a
// flag given on the command line overrides the preset's value, whatever the order. The name
// "default" is kept as another name of "cpu", so runs and scripts from before still resume.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "grokalign/core/error.hpp"
#include "grokalign/distributed/communicator.hpp"

namespace grokalign::run {

// A flag whose value cannot be used; main_guard prints it on one line and exits with 2.
class FlagError : public Error {
 public:
  FlagError(const std::string& flag, const std::string& what) : Error(flag, what) {}
};

struct CommonOptions {
  std::uint64_t seed = 0;
  std::string data_dir;  // empty: $GROKALIGN_DATA, else data/
  std::string out;       // empty: the program's default under results/
  int threads = 1;
  std::string dtype = "f64";  // add_common_flags sets the program's own default
  std::string preset = "cpu";
  bool smoke = false;
  std::int64_t checkpoint_every = -1;  // -1: the program's default; 0: never
  std::string resume;
  bool quiet = false;
  bool nan_guard = true;
};

// What a program says of its shared flags' defaults: the presets --preset accepts (the
// first is the default) and the scalar type of the authors' code for its experiment, which
// every preset uses unless --dtype says otherwise (SPEC section 2: float64 for XOR, the NTK
// comparison and accelerating grokking; float32 for the CNN, the transformer and
// inhibiting generalisation).
// `program` names the program's folder under results/ (what it passes to
// run::default_out_dir), so that --help shows where a run without --out writes.
struct ProgramDefaults {
  std::vector<std::string> presets = {"cpu", "paper"};
  std::string dtype = "f64";
  std::string program = {};  // e.g. "xor_grokking"; empty: shown as <program>
};

// What --help says of --out's default: the folder run::default_out_dir(program) makes.
inline std::string default_out_help(const std::string& program) {
  return "results/" + (program.empty() ? std::string("<program>") : program) +
         "/<date>-<time>, a new folder for each run";
}

// Registers the shared flags with the program's defaults.
inline void add_common_flags(CLI::App& app, CommonOptions& o,
                             const ProgramDefaults& defaults = {}) {
  const auto& presets = defaults.presets;
  if (presets.empty()) throw Error("add_common_flags", "a program needs at least one preset");
  o.dtype = defaults.dtype;
  o.preset = presets.front();
  app.add_option("--seed", o.seed, "Seed of every random generator of the run")
      ->check(CLI::NonNegativeNumber)  // otherwise -1 silently wraps to 2^64 - 1
      ->capture_default_str();
  app.add_option("--data_dir", o.data_dir,
                 "Folder holding the data sets (default: $GROKALIGN_DATA, else data/)");
  app.add_option("--out", o.out,
                 "Output folder (config.json, stats.csv, checkpoint.bin; default: " +
                     default_out_help(defaults.program) + ")");
  app.add_option("--threads", o.threads, "OpenMP threads for the linear algebra")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--dtype", o.dtype,
                 "Scalar type: f64 or f32 (default: " + defaults.dtype +
                     ", as the authors' code for this experiment)")
      ->check(CLI::IsMember({"f64", "f32"}))
      ->capture_default_str();
  app.add_option("--preset", o.preset,
                 "Size of the run: " + fmt::format("{}", fmt::join(presets, ", ")) +
                     " (default: " + presets.front() + ")")
      ->transform([first = presets.front()](std::string v) { return v == "default" ? first : v; })
      ->check(CLI::IsMember(presets))
      ->capture_default_str();
  app.add_flag("--smoke", o.smoke, "A run of a few seconds, for tests");
  app.add_option("--checkpoint_every", o.checkpoint_every,
                 "Steps (or epochs) between checkpoints; 0 for none (default: the program's)")
      ->check(CLI::Range(std::int64_t{0}, std::numeric_limits<std::int64_t>::max()));
  app.add_option("--resume", o.resume, "Continue the run in this folder from its checkpoint");
  app.add_flag("--quiet", o.quiet, "No progress display");
  // A callback rather than CLI11's negated "!--no_nan_guard", which --help shows as
  // "--no_nan_guard{false}".
  app.add_flag_callback(
      "--no_nan_guard", [&o] { o.nan_guard = false; },
      "Do not stop when the loss or a gradient turns NaN or Inf");
}

// DIR/config.json of the run that --resume DIR continues.
inline nlohmann::json read_resumed_config(const std::string& dir) {
  const auto path = std::filesystem::path(dir) / "config.json";
  std::ifstream in(path);
  if (!in) throw FlagError("--resume", "'" + dir + "' holds no config.json: is it a run folder?");
  try {
    nlohmann::json config = nlohmann::json::parse(in);
    if (!config.is_object())
      throw FlagError("--resume", "'" + path.string() + "' is not an object");
    return config;
  } catch (const nlohmann::json::exception& e) {
    throw FlagError("--resume", "'" + path.string() + "' is not valid JSON: " + e.what());
  }
}

// On --resume DIR, the shared flags the command line leaves out (seed, dtype, preset, smoke)
// are the resumed run's, from DIR/config.json.
inline void inherit_common_flags(const CLI::App& app, CommonOptions& o) {
  if (o.resume.empty()) return;
  const nlohmann::json config = read_resumed_config(o.resume);
  try {
    if (app.count("--seed") == 0 && config.contains("seed"))
      o.seed = config["seed"].get<std::uint64_t>();
    if (app.count("--dtype") == 0 && config.contains("dtype"))
      o.dtype = config["dtype"].get<std::string>();
    if (config.contains("preset")) {
      const auto preset = config["preset"].get<std::string>();
      if (app.count("--smoke") == 0 && preset == "smoke") o.smoke = true;
      if (app.count("--preset") == 0 && preset != "smoke")
        o.preset = preset == "default" ? o.preset : preset;  // "default": the first preset
    }
  } catch (const nlohmann::json::exception& e) {
    throw FlagError("--resume", "'" + o.resume + "/config.json' is malformed: " + e.what());
  }
}

// Binds the fields of a settings struct S to flags, and fills every field whose flag was
// not given from a preset after parsing (apply).
template <class S>
class SettingsFlags {
 public:
  SettingsFlags(CLI::App& app, S& settings) : app_(app), s_(settings) {}

  template <class V>
  CLI::Option* add(const std::string& name, V S::*field, const std::string& help) {
    // A bool is a flag that also takes =true / =false, so a preset's true can be turned off.
    CLI::Option* opt;
    if constexpr (std::is_same_v<V, bool>)
      opt = app_.add_flag(name, s_.*field, help);
    else
      opt = app_.add_option(name, s_.*field, help)->capture_default_str();
    fill_.push_back([this, opt, field](const S& preset) {
      if (opt->count() == 0) s_.*field = preset.*field;
    });
    return opt;
  }

  // Every field not set on the command line takes the preset's value.
  void apply(const S& preset) {
    for (auto& f : fill_) f(preset);
  }
  // The same, except that a resumed run (--resume DIR) takes what the command line does not
  // say from DIR/config.json, so `--resume DIR` alone continues the run as it was started.
  // S converts to and from JSON (it is what config.json's "settings" holds).
  void apply(const S& preset, const CommonOptions& common) {
    if (common.resume.empty()) return apply(preset);
    nlohmann::json merged = preset;
    merged.update(read_resumed_config(common.resume).value("settings", nlohmann::json::object()));
    try {
      apply(merged.get<S>());
    } catch (const nlohmann::json::exception& e) {
      throw FlagError("--resume", "the settings in '" + common.resume +
                                      "/config.json' do not fit this program: " + e.what());
    }
  }

 private:
  CLI::App& app_;
  S& s_;
  std::vector<std::function<void(const S&)>> fill_;
};

// Parses argv. Returns -1 to go on, or the exit code (0 after --help, 2 on a bad flag with a
// one-line message on stderr). With `common`, a --resume run inherits the shared flags it was
// started with (inherit_common_flags).
inline int parse_flags(CLI::App& app, int argc, const char* const* argv,
                       CommonOptions* common = nullptr) {
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return fmt::format("error: {} (see --help)\n", e.what());
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every refusal exits 2, whatever CLI11's own code. Under
    // mpirun every rank parses the same command line: rank 0 alone says so.
    std::ostream nowhere(nullptr);
    const bool says = distributed::launcher_rank() == 0;
    return app.exit(e, says ? std::cout : nowhere, says ? std::cerr : nowhere) == 0 ? 0 : 2;
  }
  if (common) inherit_common_flags(app, *common);
  return -1;
}

// Checks a flag's value after parsing: `ok` or a FlagError "--lr: must be ... (got ...)".
inline void require_flag(bool ok, const std::string& flag, const std::string& requirement,
                         double value) {
  if (!ok) throw FlagError(flag, fmt::format("must be {} (got {})", requirement, value));
}
inline void require_positive(const std::string& flag, double value) {
  require_flag(std::isfinite(value) && value > 0, flag, "a finite number > 0", value);
}
inline void require_nonnegative(const std::string& flag, double value) {
  require_flag(std::isfinite(value) && value >= 0, flag, "a finite number >= 0", value);
}

}  // namespace grokalign::run
