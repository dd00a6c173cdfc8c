#pragma once
// Forward mode: dual tensors, and tangents pushed through a recorded graph.
#include "grokalign/forward/dual.hpp"
#include "grokalign/forward/graph_jvp.hpp"
