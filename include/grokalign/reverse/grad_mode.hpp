#pragma once
// Whether operations on Vars record a graph. Thread-local, switched by RAII scopes.
namespace grokalign {

class GradMode {
 public:
  static bool enabled() noexcept { return flag(); }
  static void set_enabled(bool on) noexcept { flag() = on; }

 private:
  static bool& flag() noexcept {
    thread_local bool on = true;
    return on;
  }
};

// Inside this scope, operations on Vars compute values only (as torch.no_grad()).
class NoGradGuard {
 public:
  NoGradGuard() noexcept : prev_(GradMode::enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// Sets grad mode to `on` for the scope (the engine uses it to record create_graph passes).
class GradModeGuard {
 public:
  explicit GradModeGuard(bool on) noexcept : prev_(GradMode::enabled()) {
    GradMode::set_enabled(on);
  }
  ~GradModeGuard() { GradMode::set_enabled(prev_); }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace grokalign
