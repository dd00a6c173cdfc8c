#pragma once
// Tensor<T>: a dense, contiguous, row-major array of float or double with shared storage.
// Copies of a Tensor share data (like NumPy arrays and torch tensors); reshape and
// slices along the first axis are views; clone() makes an independent copy.
// A default-constructed Tensor is "undefined": autodiff uses it as a symbolic zero.
#include <Eigen/Core>
#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <type_traits>
#include <vector>

#include "grokalign/core/arch_notice.hpp"
#include "grokalign/core/error.hpp"
#include "grokalign/core/memory.hpp"
#include "grokalign/core/shape.hpp"

namespace grokalign {

template <class T>
concept Scalar = std::is_same_v<T, float> || std::is_same_v<T, double>;

namespace detail {
template <class T>
class Storage final : public RefCounted {
 public:
  explicit Storage(index_t n) : size_(n), data_(static_cast<T*>(pooled_allocate(bytes(n)))) {}
  ~Storage() override { pooled_deallocate(data_, bytes(size_)); }
  T* data() const noexcept { return data_; }
  index_t size() const noexcept { return size_; }

 private:
  static std::size_t bytes(index_t n) {
    return static_cast<std::size_t>(n > 0 ? n : 1) * sizeof(T);
  }
  index_t size_;
  T* data_;
};
}  // namespace detail

template <Scalar T>
class Tensor {
 public:
  using value_type = T;
  using MatrixMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>,
                               Eigen::Unaligned>;
  using ConstMatrixMap =
      Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>,
                 Eigen::Unaligned>;
  using ArrayMap = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>, Eigen::Unaligned>;
  using ConstArrayMap = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>, Eigen::Unaligned>;

  Tensor() = default;

  // Uninitialised tensor of the given shape (contents are whatever the cache held).
  static Tensor empty(const Shape& shape) {
    Tensor t;
    t.shape_ = shape;
    t.storage_ = detail::make_ref<detail::Storage<T>>(shape.numel());
    t.data_ = t.storage_->data();
    return t;
  }
  static Tensor full(const Shape& shape, T value) {
    Tensor t = empty(shape);
    std::fill_n(t.data_, t.numel(), value);
    return t;
  }
  static Tensor zeros(const Shape& shape) { return full(shape, T(0)); }
  static Tensor ones(const Shape& shape) { return full(shape, T(1)); }
  static Tensor scalar(T value) { return full(Shape{}, value); }
  static Tensor from(const Shape& shape, std::initializer_list<T> values) {
    return from(shape, values.begin(), values.size());
  }
  static Tensor from(const Shape& shape, const std::vector<T>& values) {
    return from(shape, values.data(), values.size());
  }
  static Tensor from(const Shape& shape, const T* values, std::size_t count) {
    if (static_cast<index_t>(count) != shape.numel())
      detail::throw_shape("Tensor::from", std::to_string(count) + " values given for shape " +
                                              shape.to_string() + " (" +
                                              std::to_string(shape.numel()) + " expected)");
    Tensor t = empty(shape);
    std::copy_n(values, count, t.data_);
    return t;
  }
  // Copies an Eigen matrix (any storage order) into a 2-D tensor.
  template <class Derived>
  static Tensor from_matrix(const Eigen::MatrixBase<Derived>& m) {
    Tensor t = empty(Shape{m.rows(), m.cols()});
    t.matrix() = m;
    return t;
  }

  bool defined() const noexcept { return static_cast<bool>(storage_); }
  explicit operator bool() const = delete;  // use defined(); avoids `if (tensor)` confusion

  const Shape& shape() const noexcept { return shape_; }
  int rank() const noexcept { return shape_.rank(); }
  index_t numel() const noexcept { return shape_.numel(); }
  index_t dim(int axis) const { return shape_.dim(axis); }
  T* data() noexcept { return data_; }
  const T* data() const noexcept { return data_; }
  T* begin() noexcept { return data_; }
  T* end() noexcept { return data_ + numel(); }
  const T* begin() const noexcept { return data_; }
  const T* end() const noexcept { return data_ + numel(); }

  // Value of a one-element tensor (any rank).
  T item() const {
    if (numel() != 1)
      detail::throw_shape("item", "tensor of shape " + shape_.to_string() + " is not a scalar");
    return data_[0];
  }
  // Element access by full multi-index (checked); meant for tests and small programs.
  template <class... I>
  T& at(I... idx) {
    return data_[offset_of({static_cast<index_t>(idx)...})];
  }
  template <class... I>
  T at(I... idx) const {
    return data_[offset_of({static_cast<index_t>(idx)...})];
  }

  // A view with a new shape holding the same number of elements.
  Tensor reshape(const Shape& new_shape) const {
    const index_t known = new_shape.numel();
    if (known != numel())
      detail::throw_shape("reshape", "cannot view shape " + shape_.to_string() + " (" +
                                         std::to_string(numel()) + " elements) as " +
                                         new_shape.to_string());
    Tensor t = *this;
    t.shape_ = new_shape;
    return t;
  }
  // A view of rows [start, start + count) along the first axis.
  Tensor rows(index_t start, index_t count) const {
    if (rank() == 0 || start < 0 || count < 0 || start + count > shape_[0])
      detail::throw_shape("rows", "rows [" + std::to_string(start) + ", " +
                                      std::to_string(start + count) + ") out of range for shape " +
                                      shape_.to_string());
    Tensor t = *this;
    t.shape_[0] = count;
    t.data_ = data_ + start * shape_.prod(1, rank());
    return t;
  }
  Tensor clone() const {
    Tensor t = empty(shape_);
    if (numel()) std::memcpy(t.data_, data_, sizeof(T) * numel());
    return t;
  }
  // Copies `src` (same number of elements) into this tensor's storage, in place.
  void copy_from(const Tensor& src) {
    if (src.numel() != numel())
      detail::throw_shape("copy_from",
                          "cannot copy " + src.shape().to_string() + " into " + shape_.to_string());
    if (numel() && src.data_ != data_) std::memmove(data_, src.data_, sizeof(T) * numel());
  }
  void fill(T value) { std::fill_n(data_, numel(), value); }
  bool shares_storage_with(const Tensor& o) const noexcept { return storage_ == o.storage_; }
  // True when no other Tensor (copy or view) refers to this storage, so writing in place
  // cannot be observed elsewhere.
  bool is_sole_owner() const noexcept { return storage_ && storage_->use_count() == 1; }

  // Eigen views. matrix() collapses all leading axes into rows: [..., n] -> [prod, n].
  MatrixMap matrix() { return MatrixMap(data_, rows2d(), cols2d()); }
  ConstMatrixMap matrix() const { return ConstMatrixMap(data_, rows2d(), cols2d()); }
  MatrixMap matrix(index_t r, index_t c) { return MatrixMap(data_, r, c); }
  ConstMatrixMap matrix(index_t r, index_t c) const { return ConstMatrixMap(data_, r, c); }
  ArrayMap array() { return ArrayMap(data_, numel()); }
  ConstArrayMap array() const { return ConstArrayMap(data_, numel()); }

  std::vector<T> to_vector() const { return std::vector<T>(data_, data_ + numel()); }

 private:
  index_t rows2d() const { return rank() <= 1 ? 1 : shape_.prod(0, rank() - 1); }
  index_t cols2d() const { return rank() == 0 ? 1 : shape_[rank() - 1]; }
  index_t offset_of(std::initializer_list<index_t> idx) const {
    if (static_cast<int>(idx.size()) != rank())
      detail::throw_shape("at",
                          std::to_string(idx.size()) + " indices for shape " + shape_.to_string());
    index_t off = 0;
    int i = 0;
    for (index_t v : idx) {
      if (v < 0 || v >= shape_[i])
        detail::throw_shape("at", "index " + std::to_string(v) + " out of range on axis " +
                                      std::to_string(i) + " of shape " + shape_.to_string());
      off = off * shape_[i] + v;
      ++i;
    }
    return off;
  }

  detail::Ref<detail::Storage<T>> storage_;
  T* data_ = nullptr;
  Shape shape_;
};

}  // namespace grokalign
