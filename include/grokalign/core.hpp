#pragma once
// Tensors, shapes, errors, random numbers and the memory cache.
#include "grokalign/core/arch_notice.hpp"
#include "grokalign/core/error.hpp"
#include "grokalign/core/memory.hpp"
#include "grokalign/core/print.hpp"
#include "grokalign/core/random.hpp"
#include "grokalign/core/shape.hpp"
#include "grokalign/core/tensor.hpp"
