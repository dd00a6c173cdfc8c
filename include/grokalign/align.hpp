#pragma once
// The paper's tools: the GrokAlign penalty, centroids and their alignment, PC1 of the
// Jacobian, and the empirical NTK; penalties on centroid and Jacobian alignment, and the
// Jacobian-alignment measurement. Built only on the engine's public transforms.
#include "grokalign/align/alignment_penalty.hpp"
#include "grokalign/align/centroid.hpp"
#include "grokalign/align/jacobian_alignment.hpp"
#include "grokalign/align/ntk.hpp"
#include "grokalign/align/pc1.hpp"
#include "grokalign/align/penalty.hpp"
