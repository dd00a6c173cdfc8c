#pragma once
// An optimiser's (or gradient filter's) state as a directory of .npy files, like a model's
// state dict (io/state_dict.hpp), so that training resumes with its moments: PyTorch's
// optimizer.state_dict(). Built on the same visit_state the checkpoints use
// (run/state.hpp): whatever AdamW, SGD, GrokfastEma or GrokfastMa list there is saved.
//
//   "<param>.<field>.npy"  each state buffer ("0.exp_avg.npy", "3.momentum_buffer.npy"),
//                          written once the buffer exists (after the parameter's first step)
//   "<param>.<field>.npy"  each counter ("0.step.npy"): a float64 scalar, as PyTorch keeps
//                          AdamW's step as a float tensor; exact below 2^53
//   "lr.npy"               the current learning rate, for optimisers (anything with lr() and
//                          set_lr()), restored on load as PyTorch restores param_groups' lr
//
// Loading reads and checks every file before changing anything: a counter's file must exist
// and hold a non-negative integer; a buffer's file, when present, must have the buffer's
// shape (a missing one means the buffer did not exist yet); and, as a strict
// load_state_dict, a .npy file that names no state of this object (another optimiser's
// state, or more parameters) is refused. Saving removes the file of a buffer that does not
// exist yet, so a directory reused after a reset holds no stale moments.
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include "grokalign/core/error.hpp"
#include "grokalign/core/tensor.hpp"
#include "grokalign/io/npy.hpp"

namespace grokalign {

namespace detail::optimizer_state {

template <class S>
concept HasLr = requires(S& s, double v) {
  { s.lr() } -> std::convertible_to<double>;
  s.set_lr(v);
};

inline std::filesystem::path file_for(const std::filesystem::path& dir, const std::string& name) {
  return dir / (name + ".npy");
}

inline bool file_exists(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::exists(p, ec);
}

inline std::int64_t read_counter(const std::filesystem::path& path, const char* op) {
  if (!file_exists(path)) throw Error(op, "missing '" + path.string() + "' (a state counter)");
  const double v = load_npy<double>(path, Shape{}).item();
  if (!(v >= 0) || v != std::floor(v) || v > 9007199254740992.0)
    throw Error(op, "'" + path.string() + "' holds " + std::to_string(v) +
                        ", not a non-negative integer counter");
  return static_cast<std::int64_t>(v);
}

}  // namespace detail::optimizer_state

template <class Stateful>
void save_optimizer_state(const std::filesystem::path& dir, Stateful& s) {
  namespace os = detail::optimizer_state;
  constexpr const char* op = "save_optimizer_state";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(op, "cannot create directory '" + dir.string() + "': " + ec.message());
  if (!std::filesystem::is_directory(dir))
    throw Error(op, "'" + dir.string() + "' exists and is not a directory");
  s.visit_state([&](const std::string& name, auto& value, auto&&... /*shape*/) {
    using V = std::decay_t<decltype(value)>;
    const auto path = os::file_for(dir, name);
    if constexpr (std::is_integral_v<V>) {
      save_npy(path, Tensor<double>::scalar(static_cast<double>(value)));
    } else if (value.defined()) {
      save_npy(path, value);
    } else {
      std::error_code ignored;
      std::filesystem::remove(path, ignored);
    }
  });
  if constexpr (os::HasLr<Stateful>)
    save_npy(os::file_for(dir, "lr"), Tensor<double>::scalar(s.lr()));
}

template <class Stateful>
void load_optimizer_state(const std::filesystem::path& dir, Stateful& s) {
  namespace os = detail::optimizer_state;
  constexpr const char* op = "load_optimizer_state";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw Error(op, "'" + dir.string() + "' is not a directory");

  std::set<std::string> known;
  std::vector<std::function<void()>> assign;
  s.visit_state([&](const std::string& name, auto& value, auto&&... shape) {
    using V = std::decay_t<decltype(value)>;
    const auto path = os::file_for(dir, name);
    known.insert(name + ".npy");
    if constexpr (std::is_integral_v<V>) {
      const V v = static_cast<V>(os::read_counter(path, op));
      assign.push_back([&value, v] { value = v; });
    } else {
      V t;  // undefined: the buffer did not exist yet when the state was saved
      if (os::file_exists(path)) t = load_npy<typename V::value_type>(path, shape...);
      assign.push_back([&value, t] { value = t; });
    }
  });
  double lr = 0;
  if constexpr (os::HasLr<Stateful>) {
    const auto path = os::file_for(dir, "lr");
    known.insert("lr.npy");
    if (!os::file_exists(path))
      throw Error(op, "missing '" + path.string() + "' (the learning rate)");
    lr = load_npy<double>(path, Shape{}).item();
  }
  std::vector<std::string> unexpected;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().extension() == ".npy" && !known.count(it->path().filename().string()))
      unexpected.push_back(it->path().filename().string());
  if (ec) throw Error(op, "cannot list directory '" + dir.string() + "': " + ec.message());
  if (!unexpected.empty()) {
    std::sort(unexpected.begin(), unexpected.end());
    std::string list;
    for (const auto& u : unexpected) list += (list.empty() ? "'" : ", '") + u + "'";
    throw Error(op, "'" + dir.string() + "' holds " + list +
                        ", which match no state of this optimiser (saved from another "
                        "optimiser, or for more parameters?)");
  }
  if constexpr (os::HasLr<Stateful>) s.set_lr(lr);  // validated; throws before any change
  for (auto& f : assign) f();
}

}  // namespace grokalign
