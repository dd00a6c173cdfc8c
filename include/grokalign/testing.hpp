#pragma once
// The gradient-checking harness (not included by grokalign.hpp: tests opt in).
#include "grokalign/testing/gradcheck.hpp"
