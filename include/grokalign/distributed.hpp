#pragma once
// Data-parallel training over MPI (optional; link grokalign::distributed): the MPI
// environment and communicator, sharding a global batch over ranks, one flat allreduce of
// every gradient, parameter broadcast. Built without MPI, the same code runs as one process.
// See docs/scaling.md.
#include "grokalign/distributed/communicator.hpp"
#include "grokalign/distributed/data_parallel.hpp"
#include "grokalign/distributed/gradient_allreduce.hpp"
#include "grokalign/distributed/shard.hpp"
#include "grokalign/distributed/shared_counter.hpp"
