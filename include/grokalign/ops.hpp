#pragma once
// Every differentiable primitive, usable on Tensor, Var and Dual alike.
#include "grokalign/ops/activation.hpp"
#include "grokalign/ops/apply.hpp"
#include "grokalign/ops/arithmetic.hpp"
#include "grokalign/ops/conv.hpp"
#include "grokalign/ops/layout.hpp"
#include "grokalign/ops/loss.hpp"
#include "grokalign/ops/math.hpp"
#include "grokalign/ops/matmul.hpp"
#include "grokalign/ops/max.hpp"
#include "grokalign/ops/reduction.hpp"
