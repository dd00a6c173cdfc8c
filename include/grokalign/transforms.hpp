#pragma once
// vjp, jvp, jacobians and Hessian-vector products.
#include "grokalign/transforms/transforms.hpp"
