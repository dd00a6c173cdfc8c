#pragma once
// The paper's tools: the GrokAlign penalty, centroids and their alignment, PC1 of the
// Jacobian, and the empirical NTK. Built only on the engine's public transforms.
#include "grokalign/align/centroid.hpp"
#include "grokalign/align/ntk.hpp"
#include "grokalign/align/pc1.hpp"
#include "grokalign/align/penalty.hpp"
