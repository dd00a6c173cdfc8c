#pragma once
// The whole library: tensors, differentiable ops, reverse and forward mode, transforms,
// nn modules, optimisers, .npy state dicts
// and the alignment tools.
#include "grokalign/align.hpp"
#include "grokalign/core.hpp"
#include "grokalign/forward.hpp"
#include "grokalign/io.hpp"
#include "grokalign/nn.hpp"
#include "grokalign/ops.hpp"
#include "grokalign/optim.hpp"
#include "grokalign/reverse.hpp"
#include "grokalign/transforms.hpp"
