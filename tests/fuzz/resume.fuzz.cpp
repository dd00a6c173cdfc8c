// What `--resume DIR` reads besides the checkpoint's arrays: the configuration stored in
// the checkpoint (compared with this run's, setting by setting), stats.csv (cut back to the
// checkpoint's step), resumes.json (appended to) and config.json (whose settings and shared
// flags a `--resume DIR` run inherits). The input is four parts separated by NUL bytes: the
// checkpoint's meta JSON, stats.csv, resumes.json, config.json. A folder is made of them,
// the shared flags are inherited from it, and a Run is opened on it, as the programs do.
#include "fuzz_support.hpp"
#include "grokalign/run/run.hpp"

namespace {

std::vector<std::string> split4(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> parts(1);
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == 0 && parts.size() < 4)
      parts.emplace_back();
    else
      parts.back() += static_cast<char>(data[i]);
  }
  parts.resize(4);
  return parts;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace run = grokalign::run;
  const auto parts = split4(data, size);
  const auto dir = grokalign_fuzz::scratch_dir() / "run";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  grokalign_fuzz::write_file(
      dir / "stats.csv", reinterpret_cast<const std::uint8_t*>(parts[1].data()), parts[1].size());
  if (!parts[2].empty())
    grokalign_fuzz::write_file(dir / "resumes.json",
                               reinterpret_cast<const std::uint8_t*>(parts[2].data()),
                               parts[2].size());
  if (!parts[3].empty())
    grokalign_fuzz::write_file(dir / "config.json",
                               reinterpret_cast<const std::uint8_t*>(parts[3].data()),
                               parts[3].size());
  run::Checkpoint c;
  try {
    c.meta() = nlohmann::json::parse(parts[0]);
  } catch (const nlohmann::json::exception&) {
    c.meta() = parts[0];  // not JSON: stored as a string, which the resume must refuse
  }
  try {
    c.save(dir / "checkpoint.bin");
  } catch (const nlohmann::json::exception&) {
    return 0;  // a string that is not UTF-8 cannot be written as JSON: no checkpoint to fuzz
  }

  run::CommonOptions common;
  common.resume = dir.string();
  common.quiet = true;
  run::RunSpec spec;
  spec.program = "fuzz";
  spec.settings = {{"lr", 0.001}, {"width", 8}, {"epochs", 10}};
  spec.data = {{"name", "xor"}, {"source", "memory"}};
  spec.columns = {"step", "loss", "acc"};
  spec.resumable_settings = {"epochs"};
  grokalign_fuzz::expect_ok_or_error([&] {
    CLI::App app;
    run::CommonOptions inherited;
    run::add_common_flags(app, inherited);
    const char* argv[] = {"fuzz"};
    app.parse(1, argv);
    inherited.resume = dir.string();
    run::inherit_common_flags(app, inherited);
  });
  grokalign_fuzz::expect_ok_or_error([&] {
    run::Run r(common, spec, dir);
    r.log({double(r.start_step() + 1), 0.5, 1.0});
    // stats.csv now holds only whole rows up to the step, then the new one.
    const auto rows = run::StatsCsv::read_rows(dir / "stats.csv");
    if (rows.empty() || rows.back().size() != 3) __builtin_trap();
  });
  return 0;
}
