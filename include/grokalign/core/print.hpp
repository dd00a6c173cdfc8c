#pragma once
// Printing tensors as NumPy prints arrays: nested brackets, one row per line, numbers
// right-aligned to a common width in %g form with `precision` significant digits (6, as
// NumPy and PyTorch). Tensors above `threshold` elements (1000, as both) show the first and
// last `edge` (3) entries of each axis around "...". An undefined tensor prints as
// "(undefined)". `std::cout << t` uses the defaults; to_string(t, options) takes others.
#include <algorithm>
#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

#include "grokalign/core/tensor.hpp"

namespace grokalign {

struct PrintOptions {
  int precision = 6;
  index_t threshold = 1000;
  index_t edge = 3;
};

namespace detail::print {

// The indices of one axis that are shown; -1 marks the "..." gap.
inline std::vector<index_t> shown(index_t n, bool summarise, index_t edge) {
  std::vector<index_t> out;
  if (!summarise || n <= 2 * edge) {
    for (index_t i = 0; i < n; ++i) out.push_back(i);
    return out;
  }
  for (index_t i = 0; i < edge; ++i) out.push_back(i);
  out.push_back(-1);
  for (index_t i = n - edge; i < n; ++i) out.push_back(i);
  return out;
}

template <Scalar T>
std::string number(T v, int precision) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", precision, static_cast<double>(v));
  return buf;
}

template <Scalar T>
struct Printer {
  const Tensor<T>& t;
  const PrintOptions& o;
  bool summarise;
  std::size_t width = 0;

  // Visits every shown element (for the common width), then writes.
  void measure(int axis, index_t offset) {
    const index_t n = t.shape()[axis], stride = t.shape().prod(axis + 1, t.rank());
    for (index_t i : shown(n, summarise, o.edge)) {
      if (i < 0) continue;
      if (axis + 1 == t.rank())
        width = std::max(width, number(t.data()[offset + i], o.precision).size());
      else
        measure(axis + 1, offset + i * stride);
    }
  }
  void write(std::string& s, int axis, index_t offset) const {
    const index_t n = t.shape()[axis], stride = t.shape().prod(axis + 1, t.rank());
    const bool last_axis = axis + 1 == t.rank();
    // Between sub-blocks: a newline per remaining axis, then indentation to this depth.
    const std::string gap =
        last_axis ? ", "
                  : "," + std::string(t.rank() - axis - 1, '\n') + std::string(axis + 1, ' ');
    s += '[';
    bool first = true;
    for (index_t i : shown(n, summarise, o.edge)) {
      if (!first) s += gap;
      first = false;
      if (i < 0) {
        s += "...";
      } else if (last_axis) {
        const std::string v = number(t.data()[offset + i], o.precision);
        s += std::string(width - v.size(), ' ') + v;
      } else {
        write(s, axis + 1, offset + i * stride);
      }
    }
    s += ']';
  }
};

}  // namespace detail::print

template <Scalar T>
std::string to_string(const Tensor<T>& t, const PrintOptions& options = {}) {
  if (!t.defined()) return "(undefined)";
  if (t.rank() == 0) return detail::print::number(t.item(), options.precision);
  detail::print::Printer<T> p{t, options, t.numel() > options.threshold};
  p.measure(0, 0);
  std::string s;
  p.write(s, 0, 0);
  return s;
}

template <Scalar T>
std::ostream& operator<<(std::ostream& os, const Tensor<T>& t) {
  return os << to_string(t);
}

}  // namespace grokalign
