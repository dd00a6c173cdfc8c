#pragma once
// A training run's plumbing: flags, config.json, stats.csv, progress, checkpoints and
// resume, the non-finite guard. Needs fmt, CLI11, nlohmann-json and zlib (the CMake target
// grokalign::run links them).
#include "grokalign/run/checkpoint.hpp"
#include "grokalign/run/flags.hpp"
#include "grokalign/run/guard.hpp"
#include "grokalign/run/main.hpp"
#include "grokalign/run/progress.hpp"
#include "grokalign/run/run.hpp"
#include "grokalign/run/state.hpp"
#include "grokalign/run/stats.hpp"
