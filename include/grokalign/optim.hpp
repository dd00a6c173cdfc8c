#pragma once
// Optimisers (SGD, AdamW) and the gradient transforms applied between backward() and
// step(): clipping and the Grokfast filters; learning-rate schedules.
#include "grokalign/optim/adamw.hpp"
#include "grokalign/optim/clip.hpp"
#include "grokalign/optim/grokfast.hpp"
#include "grokalign/optim/optimizer.hpp"
#include "grokalign/optim/schedule.hpp"
#include "grokalign/optim/sgd.hpp"
