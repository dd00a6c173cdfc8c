#pragma once
// Reverse mode: Var, the recorded graph, grad() and backward(), grad-mode scopes.
#include "grokalign/reverse/engine.hpp"
#include "grokalign/reverse/grad_mode.hpp"
#include "grokalign/reverse/graph.hpp"
#include "grokalign/reverse/var.hpp"
