#pragma once
// stats.csv: a header line, then one row per logged step. Each row is handed to the kernel
// as soon as it is written (fflush), so a run killed at any moment keeps every row it had
// logged. Numbers are printed in their shortest form that reads back to the same value
// (fmt's "{}"), so a resumed run's rows compare equal to an uninterrupted run's, digit for
// digit. The first column is the step (or epoch): resuming keeps the rows up to the
// checkpoint's step and drops the later ones, which the resumed run logs again.
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "grokalign/core/error.hpp"
#include "grokalign/run/checkpoint.hpp"

namespace grokalign::run {

namespace detail {

inline std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> out;
  std::string cell;
  std::istringstream in(line);
  while (std::getline(in, cell, ',')) out.push_back(cell);
  if (!line.empty() && line.back() == ',') out.emplace_back();
  return out;
}

inline std::string join_csv(const std::vector<std::string>& cells) {
  std::string s;
  for (std::size_t i = 0; i < cells.size(); ++i) s += (i ? "," : "") + cells[i];
  return s;
}

inline std::string format_cell(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{}", v);
}

}  // namespace detail

class StatsCsv {
 public:
  StatsCsv() = default;
  StatsCsv(const StatsCsv&) = delete;
  StatsCsv& operator=(const StatsCsv&) = delete;
  StatsCsv(StatsCsv&& o) noexcept { *this = std::move(o); }
  StatsCsv& operator=(StatsCsv&& o) noexcept {
    std::swap(file_, o.file_);
    path_ = std::move(o.path_);
    columns_ = std::move(o.columns_);
    return *this;
  }
  ~StatsCsv() {
    if (file_) std::fclose(file_);
  }

  // A new file with the header (an existing one is replaced).
  static StatsCsv create(const std::filesystem::path& path, std::vector<std::string> columns) {
    StatsCsv s(path, std::move(columns));
    grokalign::run::detail::write_file_atomically(path, detail::join_csv(s.columns_) + "\n",
                                                  "stats.csv");
    s.open_for_append();
    return s;
  }

  // Continues the file of a run resumed at `last_step`: the header must name the same
  // columns; rows whose first column exceeds last_step are dropped (the run logs them again).
  static StatsCsv resume(const std::filesystem::path& path, std::vector<std::string> columns,
                         double last_step) {
    StatsCsv s(path, std::move(columns));
    std::ifstream in(path);
    if (!in) throw Error("stats.csv", "cannot read '" + path.string() + "' to resume it");
    std::string line, kept;
    if (!std::getline(in, line) || line != detail::join_csv(s.columns_))
      throw Error("stats.csv", "'" + path.string() + "' has the header '" + line +
                                   "', but this run writes '" + detail::join_csv(s.columns_) + "'");
    kept = line + "\n";
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      const auto cells = detail::split_csv_line(line);
      double step = 0;
      try {
        step = std::stod(cells.at(0));
      } catch (const std::exception&) {
        break;  // a row cut short by a kill: nothing after it was complete either
      }
      if (cells.size() != s.columns_.size() || step > last_step) break;
      kept += line + "\n";
    }
    grokalign::run::detail::write_file_atomically(path, kept, "stats.csv");
    s.open_for_append();
    return s;
  }

  // One row, as many values as columns, flushed to the kernel before returning.
  void write(const std::vector<double>& values) {
    if (values.size() != columns_.size())
      throw Error("stats.csv", std::to_string(values.size()) + " values for " +
                                   std::to_string(columns_.size()) + " columns");
    std::string line;
    for (std::size_t i = 0; i < values.size(); ++i)
      line += (i ? "," : "") + detail::format_cell(values[i]);
    line += "\n";
    if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0)
      throw Error("stats.csv", "cannot write to '" + path_.string() + "'");
  }

  const std::vector<std::string>& columns() const noexcept { return columns_; }
  const std::filesystem::path& path() const noexcept { return path_; }

  // Every row of a stats.csv as numbers, for tests and analysis.
  static std::vector<std::vector<double>> read_rows(const std::filesystem::path& path,
                                                    std::vector<std::string>* header = nullptr) {
    std::ifstream in(path);
    if (!in) throw Error("stats.csv", "cannot read '" + path.string() + "'");
    std::string line;
    std::getline(in, line);
    if (header) *header = detail::split_csv_line(line);
    std::vector<std::vector<double>> rows;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      std::vector<double> row;
      for (const auto& c : detail::split_csv_line(line))
        row.push_back(std::strtod(c.c_str(), nullptr));
      rows.push_back(std::move(row));
    }
    return rows;
  }

 private:
  StatsCsv(std::filesystem::path path, std::vector<std::string> columns)
      : path_(std::move(path)), columns_(std::move(columns)) {
    if (columns_.empty()) throw Error("stats.csv", "no columns");
    for (const auto& c : columns_)
      if (c.empty() || c.find_first_of(",\n\"") != std::string::npos)
        throw Error("stats.csv", "column name '" + c + "' is empty or holds a comma or quote");
  }
  void open_for_append() {
    file_ = std::fopen(path_.c_str(), "a");
    if (!file_) throw Error("stats.csv", "cannot append to '" + path_.string() + "'");
  }

  std::FILE* file_ = nullptr;
  std::filesystem::path path_;
  std::vector<std::string> columns_;
};

}  // namespace grokalign::run
