#pragma once
// A model's parameters as a directory of .npy files, one per parameter and named by it
// ("0.weight" -> "0.weight.npy"), the names PyTorch's state_dict() uses. A directory
// rather than one archive because every tool can read it: NumPy loads any single file,
// a shell lists and diffs them, and a reference run exported from PyTorch with
//   for k, v in model.state_dict().items(): np.save(f"{d}/{k}.npy", v.numpy())
// loads here unchanged.
//
// The file's dtype need not match the model's, as with PyTorch's load_state_dict (which
// copies with conversion): a float32 file loads into a double model exactly, and a float64
// file into a float model rounded to nearest, which is silent by design (it is how a
// float64 run is evaluated in float32). The one lossy case that is refused is overflow: a
// finite float64 value beyond float's range would become +-inf in the model.
//
// Works on anything that iterates like std::vector<std::pair<std::string, Var<T>>> (what
// Module::named_parameters() returns), and on any object with such a named_parameters().
#include <algorithm>
#include <cmath>
#include <concepts>
#include <filesystem>
#include <ranges>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "grokalign/core/error.hpp"
#include "grokalign/core/tensor.hpp"
#include "grokalign/io/npy.hpp"
#include "grokalign/reverse/var.hpp"

namespace grokalign {

namespace detail::state_dict {

template <class V>
struct is_var : std::false_type {};
template <Scalar T>
struct is_var<Var<T>> : std::true_type {};

template <class P>
concept NamedVar = requires(const P& p) {
  { p.first } -> std::convertible_to<std::string_view>;
  requires is_var<std::remove_cvref_t<decltype(p.second)>>::value;
};

}  // namespace detail::state_dict

// A range of (name, Var<T>) pairs, e.g. std::vector<std::pair<std::string, Var<double>>>.
template <class R>
concept NamedParameterRange =
    std::ranges::input_range<const std::remove_cvref_t<R>> && detail::state_dict::NamedVar<
        std::remove_cvref_t<std::ranges::range_reference_t<const std::remove_cvref_t<R>>>>;

// A module: anything whose named_parameters() returns NamedParameterRange.
template <class M>
concept HasNamedParameters = requires(M& m) {
  { m.named_parameters() } -> NamedParameterRange;
};

namespace detail::state_dict {

template <class R>
using scalar_of = typename std::remove_cvref_t<
    decltype(std::declval<std::ranges::range_reference_t<const std::remove_cvref_t<R>>>()
                 .second)>::value_type;

// The name becomes a file name, so it must not climb out of the directory or contain
// characters some file systems refuse; PyTorch-style names never do.
inline void check_name(const std::string& name, const char* op) {
  bool bad = name.empty() || name == "." || name == "..";
  for (char c : name)
    bad = bad || static_cast<unsigned char>(c) < 0x20 ||
          std::string_view("/\\:*?\"<>|").find(c) != std::string_view::npos;
  if (bad)
    throw Error(op, "parameter name '" + name +
                        "' cannot be used as a file name (empty, '.', '..', or contains one of "
                        "/ \\ : * ? \" < > | or a control character)");
}

template <class R>
std::vector<std::pair<std::string, Var<scalar_of<R>>>> collect(const R& named, const char* op) {
  std::vector<std::pair<std::string, Var<scalar_of<R>>>> out;
  for (const auto& p : named) {
    std::string name(std::string_view(p.first));
    check_name(name, op);
    if (!p.second.defined()) throw Error(op, "parameter '" + name + "' is an undefined Var");
    out.emplace_back(std::move(name), p.second);
  }
  std::vector<std::string> sorted;
  for (const auto& p : out) sorted.push_back(p.first);
  std::sort(sorted.begin(), sorted.end());
  const auto dup = std::adjacent_find(sorted.begin(), sorted.end());
  if (dup != sorted.end())
    throw Error(op, "two parameters are named '" + *dup + "'; their files would collide");
  return out;
}

inline std::filesystem::path file_for(const std::filesystem::path& dir, const std::string& name) {
  return dir / (name + ".npy");
}

inline std::string quoted_list(const std::vector<std::string>& items) {
  std::string s;
  for (std::size_t i = 0; i < items.size(); ++i) s += (i ? ", '" : "'") + items[i] + "'";
  return s;
}

// A float tensor read from a float64 file holds +-inf where the file held a finite value
// beyond float's range; such a load is refused rather than leave infinities in the model.
inline void check_no_overflow(const Tensor<float>& t, const std::filesystem::path& path,
                              const char* op) {
  bool any_inf = false;
  for (float v : t) any_inf = any_inf || std::isinf(v);
  if (!any_inf) return;
  const Tensor<double> exact = load_npy<double>(path);
  for (index_t i = 0; i < t.numel(); ++i)
    if (std::isinf(t.data()[i]) && std::isfinite(exact.data()[i]))
      throw Error(op, "'" + path.string() + "' holds " + std::to_string(exact.data()[i]) +
                          " (element " + std::to_string(i) +
                          "), beyond the range of the float model's parameter");
}

}  // namespace detail::state_dict

// Writes one "<name>.npy" per parameter into `dir`, creating it if needed. Each file is
// replaced atomically (see save_npy); files in `dir` that match no parameter are left
// alone, so reusing a directory for a different model leaves stale files that a strict
// load will then report.
template <NamedParameterRange Named>
void save_state_dict(const std::filesystem::path& dir, const Named& named) {
  constexpr const char* op = "save_state_dict";
  const auto params = detail::state_dict::collect(named, op);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(op, "cannot create directory '" + dir.string() + "': " + ec.message());
  if (!std::filesystem::is_directory(dir))
    throw Error(op, "'" + dir.string() + "' exists and is not a directory");
  for (const auto& [name, var] : params)
    save_npy(detail::state_dict::file_for(dir, name), var.value());
}

// Loads every parameter from "<dir>/<name>.npy". All files are read and checked first
// (presence, format, shape equal to the parameter's; the error lists every missing file,
// every unexpected one and every wrong shape, not only the first), and values are assigned in place
// (Var::assign, so optimiser state and other handles stay attached) only when all passed:
// a failing load leaves every parameter unchanged. A missing file is always an error;
// with `strict` (as in PyTorch's load_state_dict) so is a .npy file that matches no
// parameter. Returns the names of such unmatched files that a non-strict load ignored.
template <NamedParameterRange Named>
std::vector<std::string> load_state_dict(const std::filesystem::path& dir, const Named& named,
                                         bool strict = true) {
  namespace sd = detail::state_dict;
  using T = sd::scalar_of<Named>;
  constexpr const char* op = "load_state_dict";
  const auto params = sd::collect(named, op);

  std::error_code ec;
  if (!std::filesystem::exists(dir, ec))
    throw Error(op, "directory '" + dir.string() + "' does not exist");
  if (!std::filesystem::is_directory(dir, ec))
    throw Error(op, "'" + dir.string() + "' is not a directory");

  std::vector<std::string> names;
  for (const auto& p : params) names.push_back(p.first);
  std::sort(names.begin(), names.end());
  std::vector<std::string> unexpected;
  std::filesystem::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::filesystem::path& f = it->path();
    std::error_code ec2;
    if (f.extension() != ".npy" || !std::filesystem::is_regular_file(f, ec2)) continue;
    if (!std::binary_search(names.begin(), names.end(), f.stem().string()))
      unexpected.push_back(f.filename().string());
  }
  if (ec) throw Error(op, "cannot list directory '" + dir.string() + "': " + ec.message());
  std::sort(unexpected.begin(), unexpected.end());

  std::vector<std::string> missing;
  for (const auto& p : params) {
    std::error_code ec2;
    if (!std::filesystem::exists(sd::file_for(dir, p.first), ec2)) missing.push_back(p.first);
  }
  const bool refuse_extra = strict && !unexpected.empty();
  if (!missing.empty() || refuse_extra) {
    std::string msg = "'" + dir.string() + "' does not match the parameters:";
    for (const auto& name : missing)
      msg += " no file for parameter '" + name + "' (expected " + name + ".npy);";
    if (refuse_extra)
      msg += " unexpected file(s) " + sd::quoted_list(unexpected) +
             " match no parameter (load with strict = false to ignore them);";
    msg.pop_back();
    throw Error(op, msg);
  }

  // Every file is read before any shape mismatch is reported, so that the error names each
  // parameter whose shape is wrong (as PyTorch's "size mismatch for ..." list does).
  std::vector<Tensor<T>> values;
  values.reserve(params.size());
  std::vector<std::string> mismatches;
  for (const auto& [name, var] : params) {
    const auto path = sd::file_for(dir, name);
    Tensor<T> t = load_npy<T>(path);
    if constexpr (std::is_same_v<T, float>) sd::check_no_overflow(t, path, op);
    if (!(t.shape() == var.shape()))
      mismatches.push_back("'" + path.string() + "' holds shape " + t.shape().to_string() +
                           " but parameter '" + name + "' has shape " + var.shape().to_string());
    values.push_back(std::move(t));
  }
  if (mismatches.size() == 1) throw ShapeError(op, mismatches.front());
  if (!mismatches.empty()) {
    std::string msg = "size mismatch for " + std::to_string(mismatches.size()) + " parameters:";
    for (const auto& m : mismatches) msg += " " + m + ";";
    msg.pop_back();
    throw ShapeError(op, msg);
  }
  for (std::size_t i = 0; i < params.size(); ++i) {
    Var<T> v = params[i].second;
    v.assign(values[i]);
  }
  return unexpected;
}

// The same for a module (anything with a named_parameters() member).
template <class M>
requires HasNamedParameters<std::remove_reference_t<M>>
void save_state_dict(const std::filesystem::path& dir, M&& module) {
  save_state_dict(dir, module.named_parameters());
}

template <class M>
requires HasNamedParameters<std::remove_reference_t<M>> std::vector<std::string> load_state_dict(
    const std::filesystem::path& dir, M&& module, bool strict = true) {
  return load_state_dict(dir, module.named_parameters(), strict);
}

}  // namespace grokalign
