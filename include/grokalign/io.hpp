#pragma once
// NumPy .npy files and directory state dicts.
#include "grokalign/io/npy.hpp"
#include "grokalign/io/state_dict.hpp"
