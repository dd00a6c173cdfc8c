#pragma once
// Which rows of a global batch each rank trains on: rank r of N takes one contiguous block,
// the blocks in rank order tiling [0, G), sizes differing by at most one (the first G mod N
// ranks take one more). Contiguous blocks in rank order keep a sample's global index
// (offset + local row), which is what the penalty's random projections are keyed by
// (align::PenaltyOptions::global_batch / global_offset).
#include <algorithm>
#include <string>
#include <vector>

#include "grokalign/core/error.hpp"
#include "grokalign/core/tensor.hpp"
#include "grokalign/detail/kernels/layout.hpp"

namespace grokalign::distributed {

struct Shard {
  index_t offset = 0;  // first global row of this rank
  index_t rows = 0;    // rows of this rank (0 when G < N and this rank has none)
  index_t global = 0;  // G, rows of the global batch
};

inline Shard shard_of(index_t global_rows, int rank, int size) {
  if (size < 1 || rank < 0 || rank >= size || global_rows < 0)
    throw Error("shard_of", "rank " + std::to_string(rank) + " of " + std::to_string(size) +
                                " for a batch of " + std::to_string(global_rows) + " rows");
  const index_t base = global_rows / size, extra = global_rows % size, r = rank;
  return {r * base + std::min(r, extra), base + (r < extra ? 1 : 0), global_rows};
}

// Rank r's rows of a global batch [G, ...]: a view, no copy.
template <Scalar T>
Tensor<T> shard_rows(const Tensor<T>& global_batch, const Shard& s) {
  if (global_batch.rank() < 1 || global_batch.shape()[0] != s.global)
    grokalign::detail::throw_shape("shard_rows", "a shard of a " + std::to_string(s.global) +
                                                     "-row batch taken from a tensor of shape " +
                                                     global_batch.shape().to_string());
  return global_batch.rows(s.offset, s.rows);
}

// Rank r's entries of per-sample integers (labels [G], or tokens [G, n]): a copy.
inline kernels::Indices shard_rows(const kernels::Indices& global, const Shard& s) {
  if (global.shape.rank() < 1 || global.shape[0] != s.global)
    grokalign::detail::throw_shape("shard_rows", "a shard of a " + std::to_string(s.global) +
                                                     "-row batch taken from indices of shape " +
                                                     global.shape.to_string());
  const index_t per_row = s.global ? global.size() / s.global : 0;
  const auto first = global.values->begin() + s.offset * per_row;
  Shape shape = global.shape;
  shape[0] = s.rows;
  return kernels::Indices(std::vector<index_t>(first, first + s.rows * per_row), shape);
}

}  // namespace grokalign::distributed
