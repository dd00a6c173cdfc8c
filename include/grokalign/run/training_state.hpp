#pragma once
// What a training loop's checkpoint holds: the parameters, the optimiser and the named
// generators the loop advances, saved and restored in one call, so programs save the same
// things under the same names ("model.", "optim.", "gen.<name>"). A program adds its own
// entries (a batch order, say) to the snapshot before Run::save_checkpoint. When to save is
// schedule.hpp's business (checkpoint_now: at each logged step by default).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "grokalign/core/random.hpp"
#include "grokalign/run/checkpoint.hpp"
#include "grokalign/run/state.hpp"

namespace grokalign::run {

template <Scalar T, class Optimiser>
class TrainingState {
 public:
  TrainingState(NamedParameters<T> params, Optimiser& optimiser,
                std::vector<std::pair<std::string, Generator*>> generators)
      : params_(std::move(params)), opt_(optimiser), gens_(std::move(generators)) {}

  // The checkpoint with everything this state holds; add program-specific entries to it
  // (a batch order, say) before Run::save_checkpoint.
  Checkpoint snapshot() const {
    Checkpoint c;
    save_parameters(c, "model.", params_);
    save_state(c, "optim.", opt_);
    for (const auto& [name, gen] : gens_) c.put("gen." + name, *gen);
    return c;
  }
  void restore(const Checkpoint& c) {
    load_parameters(c, "model.", params_);
    load_state(c, "optim.", opt_);
    for (const auto& [name, gen] : gens_) c.restore("gen." + name, *gen);
  }
  const NamedParameters<T>& parameters() const noexcept { return params_; }

 private:
  NamedParameters<T> params_;
  Optimiser& opt_;
  std::vector<std::pair<std::string, Generator*>> gens_;
};

}  // namespace grokalign::run
