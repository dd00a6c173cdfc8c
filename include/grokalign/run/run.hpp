#pragma once
// Run: a training run's output folder and everything written into it.
//   config.json     every setting, the data set used, the library version and commit, the
//                   scalar type and threads (written once, atomically)
//   stats.csv       one row per logged step (stats.hpp)
//   checkpoint.bin  the latest checkpoint (checkpoint.hpp), replaced atomically
// A fresh run creates the folder; `--resume DIR` reopens one: the checkpoint's
// configuration must match this run's (except the settings a resume may change, such as
// the number of steps or threads), stats.csv is cut back to the checkpoint's step, and the
// program restores its state from checkpoint() and carries on from start_step().
//
// Under mpirun (a data-parallel run, every rank taking the same steps) rank 0 alone writes:
// the other ranks read the checkpoint when resuming and write nothing, not even the folder,
// so the files are the single process's whatever the number of ranks, and a run resumes with
// any number. Opening the run is a step every rank takes together (job.hpp): a folder rank 0
// cannot use stops every rank with rank 0's message instead of leaving them waiting.
#include <fmt/format.h>

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "grokalign/core/version.hpp"
#include "grokalign/distributed/communicator.hpp"
#include "grokalign/run/checkpoint.hpp"
#include "grokalign/run/flags.hpp"
#include "grokalign/run/job.hpp"
#include "grokalign/run/progress.hpp"
#include "grokalign/run/stats.hpp"
#include "grokalign/run/stop_note.hpp"

// The commit a program was built from, when its build links a definition (our examples
// link one that CMake generates); a weak declaration, so that programs without it still link
// and record "unknown".
extern "C" const char* grokalign_build_commit() __attribute__((weak));

namespace grokalign::run {

struct RunSpec {
  std::string program;               // names the run in messages and config.json
  nlohmann::json settings;           // the program's settings, flag name -> value
  nlohmann::json data;               // the data set actually used (name, source, sizes)
  std::vector<std::string> columns;  // stats.csv's columns; the first is the step
  // Settings a resume may change (more steps, say); every other one must match.
  std::vector<std::string> resumable_settings;
  std::int64_t checkpoint_every = 0;  // the program's default for --checkpoint_every -1
  std::int64_t total_steps = 0;       // for the progress display
  std::string step_name = "step";
};

// Sets the threads of OpenMP (and so of the engine's kernels) for the whole process.
inline void set_threads(int threads) {
#ifdef _OPENMP
  omp_set_num_threads(threads);
#else
  (void)threads;
#endif
}

// results/<program>/<date>-<time>: a fresh folder for each run started without --out, so
// running a program twice never meets the first run's checkpoint.
inline std::filesystem::path default_out_dir(const std::string& program) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  std::filesystem::path dir = std::filesystem::path("results") / program / stamp;
  for (int i = 2; std::filesystem::exists(dir); ++i)
    dir =
        std::filesystem::path("results") / program / (std::string(stamp) + "-" + std::to_string(i));
  return dir;
}

class Run {
 public:
  // `comm`: the ranks that take this run's steps together (rank 0 writes); the world by
  // default, Communicator::local() for a run this process takes alone.
  Run(const CommonOptions& common, RunSpec spec, const std::filesystem::path& default_out,
      const distributed::Communicator& comm = {})
      : common_(common), spec_(std::move(spec)), writes_(comm.is_root()) {
    set_threads(common_.threads);
    config_ = {{"program", spec_.program},
               {"settings", spec_.settings},
               {"data", spec_.data},
               {"seed", common_.seed},
               {"dtype", common_.dtype},
               {"preset", common_.smoke ? "smoke" : common_.preset},
               {"threads", common_.threads},
               {"library", {{"version", kVersion}, {"git_commit", git_commit()}}}};
    every_ = common_.checkpoint_every >= 0 ? common_.checkpoint_every : spec_.checkpoint_every;
    agree_on_failure(comm, [&] {
      if (!common_.resume.empty()) {
        dir_ = common_.resume;
        open_resumed();
      } else {
        dir_ = common_.out.empty() ? default_out : std::filesystem::path(common_.out);
        open_fresh();
      }
    });
    note_checkpoint(resumed() ? std::optional<std::int64_t>(start_step_) : std::nullopt);
    progress_.emplace(spec_.program, start_step_, spec_.total_steps,
                      ProgressOptions{.quiet = common_.quiet || !writes_});
  }

  const std::filesystem::path& dir() const noexcept { return dir_; }
  bool resumed() const noexcept { return checkpoint_.has_value(); }
  // The checkpoint a resumed run restores its state from.
  const Checkpoint& checkpoint() const {
    if (!checkpoint_) throw Error("Run", "this run was not resumed; there is no checkpoint");
    return *checkpoint_;
  }
  std::int64_t start_step() const noexcept { return start_step_; }
  const nlohmann::json& config() const noexcept { return config_; }
  // Whether this process writes the run's files (one process, or rank 0 of several); a
  // program writing files of its own into dir() asks this first.
  bool writes() const noexcept { return writes_; }

  void log(const std::vector<double>& row) {
    if (writes_) stats_.write(row);
  }
  Progress& progress() { return *progress_; }
  void message(const std::string& text) { progress_->message(text); }

  bool checkpoint_due(std::int64_t step) const { return every_ > 0 && step % every_ == 0; }
  // Writes the program's state for `step`; the configuration goes in with it so that a
  // resume can refuse a different one.
  void save_checkpoint(Checkpoint& ckpt, std::int64_t step) {
    if (!writes_) return;
    ckpt.meta()["step"] = step;
    ckpt.meta()["config"] = comparable(config_);
    ckpt.save(checkpoint_path());
    note_checkpoint(step);
  }
  std::filesystem::path checkpoint_path() const { return dir_ / "checkpoint.bin"; }
  std::filesystem::path stats_path() const { return dir_ / "stats.csv"; }

 private:
  static const char* git_commit() {
    return grokalign_build_commit ? grokalign_build_commit() : "unknown";
  }

  // What a stopping signal says of this run (stop_note.hpp): where it is and the checkpoint a
  // --resume would continue from. Said by the rank that writes the run.
  void note_checkpoint(std::optional<std::int64_t> step) {
    if (!writes_) return;
    const distributed::Communicator world;
    const std::string rank =
        world.size() > 1 ? fmt::format("rank {} of {}: ", world.rank(), world.size()) : "";
    note_.set(step ? fmt::format("{}{}: the run in {} keeps its checkpoint of {} {}; --resume "
                                 "continues it from there",
                                 rank, spec_.program, dir_.string(), spec_.step_name, *step)
                   : fmt::format("{}{}: the run in {} has no checkpoint yet: start it again", rank,
                                 spec_.program, dir_.string()));
  }

  // The configuration without what may differ between a run and its resumption.
  nlohmann::json comparable(nlohmann::json c) const {
    if (!c.is_object()) return c;  // a damaged record: compared as it is, and refused
    c.erase("threads");
    c.erase("library");
    // Where the files were read from may change (another --data_dir, a moved checkout);
    // what was read (name, sizes) may not.
    if (c.contains("data") && c["data"].is_object()) c["data"].erase("source");
    if (c.contains("settings") && c["settings"].is_object())
      for (const auto& key : spec_.resumable_settings) c["settings"].erase(key);
    return c;
  }

  void open_fresh() {
    if (!writes_) return;
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec || !std::filesystem::is_directory(dir_))
      throw FlagError("--out", "cannot create the output folder '" + dir_.string() + "'" +
                                   (ec ? ": " + ec.message() : ""));
    if (std::filesystem::exists(checkpoint_path()))
      throw FlagError("--out", "'" + dir_.string() +
                                   "' already holds a run (checkpoint.bin); continue it with "
                                   "--resume " +
                                   dir_.string() + " or choose another --out");
    try {
      detail::write_file_atomically(dir_ / "config.json", config_.dump(2) + "\n", "config.json");
    } catch (const Error& e) {
      throw FlagError("--out", std::string("the output folder cannot be written: ") + e.what());
    }
    stats_ = StatsCsv::create(stats_path(), spec_.columns);
  }

  void open_resumed() {
    if (!std::filesystem::exists(checkpoint_path()))
      throw FlagError("--resume", "'" + dir_.string() + "' holds no checkpoint.bin to resume from");
    checkpoint_ = Checkpoint::load(checkpoint_path());
    const nlohmann::json& meta = checkpoint_->meta();
    if (!meta.contains("step") || !meta["step"].is_number_integer() || !meta.contains("config"))
      throw CheckpointError("--resume",
                            "'" + checkpoint_path().string() + "' has no step or configuration");
    refuse_differences(comparable(meta["config"]), comparable(config_), "");
    start_step_ = meta["step"].get<std::int64_t>();
    if (!writes_) return;
    stats_ = StatsCsv::resume(stats_path(), spec_.columns, static_cast<double>(start_step_));
    // config.json keeps the original run's record; the resumption is noted beside it.
    nlohmann::json resumes = nlohmann::json::array();
    const auto record = dir_ / "resumes.json";
    if (std::ifstream in(record); in) {
      try {
        resumes = nlohmann::json::parse(in);
      } catch (const nlohmann::json::exception&) {
        resumes = nlohmann::json::array();
      }
      // A record damaged or written by hand starts afresh rather than stopping the run.
      if (!resumes.is_array()) resumes = nlohmann::json::array();
    }
    resumes.push_back({{"step", start_step_}, {"threads", common_.threads}, {"config", config_}});
    detail::write_file_atomically(record, resumes.dump(2) + "\n", "resumes.json");
  }

  // Names the first setting that differs, as the flag a user would change.
  void refuse_differences(const nlohmann::json& was, const nlohmann::json& now,
                          const std::string& path) const {
    if (was.is_object() && now.is_object()) {
      std::set<std::string> keys;
      for (auto it = was.begin(); it != was.end(); ++it) keys.insert(it.key());
      for (auto it = now.begin(); it != now.end(); ++it) keys.insert(it.key());
      for (const auto& k : keys) {
        const auto a = was.contains(k) ? was[k] : nlohmann::json(nullptr);
        const auto b = now.contains(k) ? now[k] : nlohmann::json(nullptr);
        refuse_differences(a, b, path == "settings" || path.empty() ? k : path + "." + k);
      }
      return;
    }
    if (was != now)
      throw CheckpointError(
          "--resume",
          fmt::format("the checkpoint in '{}' was made with {} {}, but this run has "
                      "{} {}; resume with the same setting",
                      dir_.string(), flag_name(path), was.dump(), flag_name(path), now.dump()));
  }
  static std::string flag_name(const std::string& key) {
    return key.find('.') == std::string::npos ? "--" + key : key;
  }

  CommonOptions common_;
  RunSpec spec_;
  bool writes_ = true;
  nlohmann::json config_;
  std::filesystem::path dir_;
  std::int64_t every_ = 0;
  std::int64_t start_step_ = 0;
  std::optional<Checkpoint> checkpoint_;
  StatsCsv stats_;
  std::optional<Progress> progress_;
  StopNote note_;
};

}  // namespace grokalign::run
