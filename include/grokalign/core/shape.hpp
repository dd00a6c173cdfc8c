#pragma once
// Shape: the extents of a dense row-major tensor. Stored inline (no heap) so that creating
// tensors in a training step never allocates for the shape itself.
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "grokalign/core/error.hpp"

namespace grokalign {

using index_t = std::int64_t;

class Shape {
 public:
  static constexpr int kMaxRank = 6;

  Shape() = default;
  Shape(std::initializer_list<index_t> dims) {
    if (dims.size() > kMaxRank) detail::throw_shape("Shape", "rank above 6 is not supported");
    for (index_t d : dims) push_back(d);
  }
  template <class It>
  Shape(It first, It last) {
    for (; first != last; ++first) push_back(static_cast<index_t>(*first));
  }

  int rank() const noexcept { return rank_; }
  index_t operator[](int i) const noexcept { return dims_[i]; }
  index_t& operator[](int i) noexcept { return dims_[i]; }
  // Python-style axis: -1 is the last axis. Throws for an axis outside [-rank, rank).
  index_t dim(int axis) const { return dims_[normalize_axis(axis, "Shape::dim")]; }
  const index_t* begin() const noexcept { return dims_.data(); }
  const index_t* end() const noexcept { return dims_.data() + rank_; }

  index_t numel() const noexcept {
    index_t n = 1;
    for (int i = 0; i < rank_; ++i) n *= dims_[i];
    return n;
  }

  void push_back(index_t d) {
    if (rank_ == kMaxRank) detail::throw_shape("Shape", "rank above 6 is not supported");
    if (d < 0) detail::throw_shape("Shape", "negative extent " + std::to_string(d));
    dims_[rank_++] = d;
  }

  int normalize_axis(int axis, const char* op) const {
    int a = axis < 0 ? axis + rank_ : axis;
    if (a < 0 || a >= rank_)
      detail::throw_shape(
          op, "axis " + std::to_string(axis) + " is out of range for shape " + to_string());
    return a;
  }

  // Product of extents in [from, to).
  index_t prod(int from, int to) const noexcept {
    index_t n = 1;
    for (int i = from; i < to; ++i) n *= dims_[i];
    return n;
  }

  std::string to_string() const {
    std::string s = "[";
    for (int i = 0; i < rank_; ++i) {
      if (i) s += ", ";
      s += std::to_string(dims_[i]);
    }
    return s + "]";
  }

  friend bool operator==(const Shape& a, const Shape& b) noexcept {
    if (a.rank_ != b.rank_) return false;
    for (int i = 0; i < a.rank_; ++i)
      if (a.dims_[i] != b.dims_[i]) return false;
    return true;
  }

 private:
  std::array<index_t, kMaxRank> dims_{};
  int rank_ = 0;
};

// NumPy broadcasting of two shapes; throws naming `op` and both shapes when incompatible.
inline Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const int r = a.rank() > b.rank() ? a.rank() : b.rank();
  Shape out;
  for (int i = 0; i < r; ++i) {
    const int ia = i - (r - a.rank()), ib = i - (r - b.rank());
    const index_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    if (da != db && da != 1 && db != 1)
      detail::throw_shape(
          op, "shapes " + a.to_string() + " and " + b.to_string() + " are not broadcastable");
    out.push_back(da == 1 ? db : da);
  }
  return out;
}

// True when `from` can be broadcast to `to` (NumPy rules, `to` fixed).
inline bool broadcastable_to(const Shape& from, const Shape& to) noexcept {
  if (from.rank() > to.rank()) return false;
  const int off = to.rank() - from.rank();
  for (int i = 0; i < from.rank(); ++i)
    if (from[i] != 1 && from[i] != to[i + off]) return false;
  return true;
}

}  // namespace grokalign
