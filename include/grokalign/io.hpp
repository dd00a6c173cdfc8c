#pragma once
// NumPy .npy files, and directory state dicts of models and optimisers.
#include "grokalign/io/npy.hpp"
#include "grokalign/io/optimizer_state.hpp"
#include "grokalign/io/state_dict.hpp"
