#pragma once
// When a signal stops a program (SIGTERM from mpirun ending a job whose other rank died, or
// from a batch system's time limit; SIGINT from Ctrl-C; SIGHUP), the last thing it says on
// standard error is which runs it stopped and the checkpoint each keeps, so the user knows
// what --resume will continue from:
//   grokalign: stopped by signal 15 (Terminated); rank 0 of 2: xor_grokking: the run in
//   results/x keeps its checkpoint of step 300; --resume continues it from there
// Each open Run holds one note (StopNote) and rewrites it as it checkpoints. The handler is
// installed only over a signal's default action (a program's own handler is left alone);
// it writes the notes with write(2) (async-signal-safe), then restores the default
// action and raises the signal again, so the program still ends as the signal says.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <mutex>
#include <string>

namespace grokalign::run {

namespace detail {

struct StopNoteSlot {
  static constexpr std::size_t kLength = 1024;
  std::atomic<bool> used{false};
  // Two buffers: the handler reads the one `current` names while the owner writes the other.
  std::atomic<int> current{0};
  char text[2][kLength] = {};
  std::atomic<std::size_t> length[2] = {0, 0};
};

inline constexpr std::size_t kStopNoteSlots = 64;  // runs open at once (a sweep's --jobs)

inline std::array<StopNoteSlot, kStopNoteSlots>& stop_note_slots() {
  static std::array<StopNoteSlot, kStopNoteSlots> slots;
  return slots;
}

inline constexpr int kStopSignals[] = {SIGTERM, SIGINT, SIGHUP};

inline void write_all(const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(STDERR_FILENO, p, n);
    if (w <= 0) return;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

inline void stop_note_handler(int sig) {
  const char* name = sig == SIGTERM  ? "15 (Terminated)"
                     : sig == SIGINT ? "2 (Interrupt)"
                                     : "1 (Hangup)";
  bool said = false;  // a process with no note (a rank that writes no run) says nothing
  for (auto& slot : stop_note_slots()) {
    if (!slot.used.load()) continue;
    const int c = slot.current.load();
    const std::size_t n = slot.length[c].load();
    if (n == 0) continue;
    if (!said) {
      write_all("grokalign: stopped by signal ", 29);
      write_all(name, std::strlen(name));
      write_all("\n", 1);
      said = true;
    }
    write_all(slot.text[c], n);
    write_all("\n", 1);
  }
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
  raise(sig);
}

// Over each stopping signal whose action is the default; called by every new note, so a
// signal a program set back to its default gets the handler again, and one the program
// handles itself keeps its handler.
inline void install_stop_note_handler() {
  static std::mutex m;
  const std::lock_guard<std::mutex> lock(m);
  for (int sig : kStopSignals) {
    struct sigaction old {};
    if (sigaction(sig, nullptr, &old) != 0 || (old.sa_flags & SA_SIGINFO) ||
        old.sa_handler != SIG_DFL)
      continue;  // ours already, ignored, or the program's own handler
    struct sigaction act {};
    act.sa_handler = stop_note_handler;
    sigemptyset(&act.sa_mask);
    for (int other : kStopSignals) sigaddset(&act.sa_mask, other);  // one note, not three
    sigaction(sig, &act, nullptr);
  }
}

}  // namespace detail

// One run's line in what a stopping signal prints; empty (and silent) until set().
class StopNote {
 public:
  StopNote() {
    detail::install_stop_note_handler();
    for (auto& slot : detail::stop_note_slots()) {
      bool expected = false;
      if (slot.used.load() || !slot.used.compare_exchange_strong(expected, true)) continue;
      slot.length[0] = slot.length[1] = 0;
      slot_ = &slot;
      return;
    }
    // More runs open than slots: this one goes unmentioned rather than failing the run.
  }
  ~StopNote() {
    if (slot_) slot_->used.store(false);
  }
  StopNote(const StopNote&) = delete;
  StopNote& operator=(const StopNote&) = delete;

  void set(const std::string& text) {
    if (!slot_) return;
    const int next = 1 - slot_->current.load();
    const std::size_t n = std::min(text.size(), detail::StopNoteSlot::kLength);
    std::memcpy(slot_->text[next], text.data(), n);
    slot_->length[next].store(n);
    slot_->current.store(next);
  }
  // The text the handler would print now (for tests).
  std::string text() const {
    if (!slot_) return {};
    const int c = slot_->current.load();
    return std::string(slot_->text[c], slot_->length[c].load());
  }

 private:
  detail::StopNoteSlot* slot_ = nullptr;
};

}  // namespace grokalign::run
