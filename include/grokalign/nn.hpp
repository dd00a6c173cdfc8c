#pragma once
// Modules, layers, initialisers and the paper's models (namespace grokalign::nn).
#include "grokalign/nn/activation.hpp"
#include "grokalign/nn/conv.hpp"
#include "grokalign/nn/init.hpp"
#include "grokalign/nn/linear.hpp"
#include "grokalign/nn/models.hpp"
#include "grokalign/nn/module.hpp"
#include "grokalign/nn/sequential.hpp"
#include "grokalign/nn/transformer.hpp"
