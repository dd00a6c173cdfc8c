#pragma once
// Optimisers (SGD, AdamW) and the gradient transforms applied between backward() and
// step(): clipping and the Grokfast filters.
#include "grokalign/optim/adamw.hpp"
#include "grokalign/optim/clip.hpp"
#include "grokalign/optim/grokfast.hpp"
#include "grokalign/optim/optimizer.hpp"
#include "grokalign/optim/sgd.hpp"
