#pragma once
// The whole library: tensors, differentiable ops, reverse and forward mode, transforms,
// nn modules, optimisers, .npy state dicts, data sets, metrics and the alignment tools. (The run
// harness, grokalign/run.hpp, also needs fmt and CLI11: the grokalign::run target.)
#include "grokalign/align.hpp"
#include "grokalign/core.hpp"
#include "grokalign/data.hpp"
#include "grokalign/forward.hpp"
#include "grokalign/io.hpp"
#include "grokalign/metrics.hpp"
#include "grokalign/nn.hpp"
#include "grokalign/ops.hpp"
#include "grokalign/optim.hpp"
#include "grokalign/reverse.hpp"
#include "grokalign/transforms.hpp"
