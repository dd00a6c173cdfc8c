#pragma once
// Mini-batches over a data set held in memory, reshuffled each epoch, with an order that a
// checkpoint can save and restore.
//
// The iterator is an endless stream: next() fills the next batch, and starts a new epoch
// (a fresh permutation) when the current one is used up. So a training loop written as
//   for (epoch...) for (b = 0; b < it.batches_per_epoch(); ++b) { it.next(); ... }
// sees every sample once per epoch (all but the N mod B left over when drop_last is set).
// A new epoch's permutation is Fisher-Yates over 0..N-1 (i from N-1 down to 1, swap with
// gen.below(i + 1)) drawn from the caller's generator, so restoring the generator's state,
// order() and position() resumes the stream exactly.
//
// The batch is copied into buffers allocated once by the constructor: inputs() is a view
// of the first rows of a [B, ...] buffer, labels() a vector of capacity B, targets() a view
// of a [B, ...] buffer. Nothing is allocated per batch. The buffers are rewritten by
// every next(): copy a batch (clone()) if it must outlive the next call.
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "grokalign/core/error.hpp"
#include "grokalign/core/random.hpp"
#include "grokalign/core/tensor.hpp"

namespace grokalign {

struct BatchOptions {
  index_t batch_size = 256;
  bool shuffle = true;     // false: every epoch in data order (the generator is not used)
  bool drop_last = false;  // skip the last, smaller batch of each epoch
  // When > 0, targets() holds one-hot rows [B, classes] of the batch's labels.
  index_t one_hot_classes = 0;
};

template <Scalar T>
class BatchIterator {
 public:
  // `inputs` [N, ...]; `labels` empty or [N]. The iterator keeps references to neither the
  // caller's vector nor (beyond sharing the tensor's storage) copies of the data.
  BatchIterator(Tensor<T> inputs, std::vector<index_t> labels, BatchOptions options, Generator& gen)
      : BatchIterator(std::move(inputs), std::move(labels), Tensor<T>(), options, gen) {}

  // Also batches `targets` [N, ...] (regression targets such as XOR's y) into targets().
  BatchIterator(Tensor<T> inputs, std::vector<index_t> labels, Tensor<T> targets,
                BatchOptions options, Generator& gen)
      : inputs_(std::move(inputs)),
        labels_(std::move(labels)),
        targets_(std::move(targets)),
        opt_(options),
        gen_(&gen) {
    const char* op = "BatchIterator";
    if (inputs_.rank() < 1) detail::throw_shape(op, "inputs need a leading sample axis");
    n_ = inputs_.shape()[0];
    if (opt_.batch_size < 1)
      throw Error(op, "batch size must be >= 1, got " + std::to_string(opt_.batch_size));
    if (n_ == 0) throw Error(op, "the data set is empty");
    if (!labels_.empty() && static_cast<index_t>(labels_.size()) != n_)
      throw Error(op,
                  std::to_string(labels_.size()) + " labels for " + std::to_string(n_) + " inputs");
    if (targets_.defined() && (targets_.rank() < 1 || targets_.shape()[0] != n_))
      detail::throw_shape(
          op, "targets " + targets_.shape().to_string() + " for " + std::to_string(n_) + " inputs");
    if (opt_.one_hot_classes > 0) {
      if (targets_.defined()) throw Error(op, "give either targets or one_hot_classes, not both");
      if (labels_.empty()) throw Error(op, "one_hot_classes needs labels");
      for (index_t i = 0; i < n_; ++i)
        if (labels_[i] < 0 || labels_[i] >= opt_.one_hot_classes)
          throw Error(op, "label " + std::to_string(labels_[i]) + " of sample " +
                              std::to_string(i) + " outside [0, " +
                              std::to_string(opt_.one_hot_classes) + ")");
    }
    if (opt_.drop_last && opt_.batch_size > n_)
      throw Error(op, "drop_last with batch size " + std::to_string(opt_.batch_size) +
                          " above the data set's " + std::to_string(n_) +
                          " samples leaves no batch");
    bsz_ = std::min(opt_.batch_size, n_);
    Shape s = inputs_.shape();
    s[0] = bsz_;
    in_buf_ = Tensor<T>::empty(s);
    if (targets_.defined()) {
      Shape ts = targets_.shape();
      ts[0] = bsz_;
      tgt_buf_ = Tensor<T>::empty(ts);
    } else if (opt_.one_hot_classes > 0) {
      tgt_buf_ = Tensor<T>::zeros(Shape{bsz_, opt_.one_hot_classes});
    }
    batch_labels_.reserve(bsz_);
    order_.resize(n_);
    for (index_t i = 0; i < n_; ++i) order_[i] = i;
    position_ = epoch_end();  // the first next() draws the first epoch's order
  }

  index_t size() const { return n_; }
  index_t batch_size() const { return bsz_; }
  index_t batches_per_epoch() const { return opt_.drop_last ? n_ / bsz_ : (n_ + bsz_ - 1) / bsz_; }
  // True when the current epoch has no batch left (the next next() starts a new one).
  bool epoch_done() const { return position_ >= epoch_end(); }

  // Fills the next batch (starting a new epoch first if the current one is used up).
  void next() {
    if (epoch_done()) start_epoch();
    const index_t count = std::min(bsz_, n_ - position_);
    const index_t row = inputs_.shape().prod(1, inputs_.rank());
    const index_t trow = tgt_buf_.defined() ? tgt_buf_.shape().prod(1, tgt_buf_.rank()) : 0;
    if (opt_.one_hot_classes > 0 && have_one_hot_)
      for (index_t i = 0; i < count_; ++i)
        tgt_buf_.data()[i * trow + batch_labels_[i]] = T(0);  // clear the previous batch's ones
    batch_labels_.clear();
    for (index_t i = 0; i < count; ++i) {
      const index_t k = order_[position_ + i];
      std::memcpy(in_buf_.data() + i * row, inputs_.data() + k * row, sizeof(T) * row);
      if (!labels_.empty()) batch_labels_.push_back(labels_[k]);
      if (targets_.defined())
        std::memcpy(tgt_buf_.data() + i * trow, targets_.data() + k * trow, sizeof(T) * trow);
      else if (opt_.one_hot_classes > 0)
        tgt_buf_.data()[i * trow + labels_[k]] = T(1);
    }
    have_one_hot_ = opt_.one_hot_classes > 0;
    count_ = count;
    position_ += count;
    batch_in_ = in_buf_.rows(0, count);
    if (tgt_buf_.defined()) batch_tgt_ = tgt_buf_.rows(0, count);
  }

  // The current batch (valid after next(), until the following next()).
  const Tensor<T>& inputs() const { return batch_in_; }
  const std::vector<index_t>& labels() const { return batch_labels_; }
  const Tensor<T>& targets() const { return batch_tgt_; }

  // Checkpoint state: the current epoch's permutation and how many of it were served.
  const std::vector<index_t>& order() const { return order_; }
  index_t position() const { return position_; }
  void restore(std::vector<index_t> order, index_t position) {
    const char* op = "BatchIterator::restore";
    if (static_cast<index_t>(order.size()) != n_)
      throw Error(op, "order has " + std::to_string(order.size()) + " entries for a data set of " +
                          std::to_string(n_));
    std::vector<bool> seen(n_, false);
    for (index_t v : order) {
      if (v < 0 || v >= n_ || seen[v])
        throw Error(op, "order is not a permutation of 0.." + std::to_string(n_ - 1) + " (entry " +
                            std::to_string(v) + ")");
      seen[v] = true;
    }
    if (position < 0 || position > n_)
      throw Error(
          op, "position " + std::to_string(position) + " outside [0, " + std::to_string(n_) + "]");
    order_ = std::move(order);
    position_ = position;
  }

 private:
  index_t epoch_end() const { return opt_.drop_last ? (n_ / bsz_) * bsz_ : n_; }
  void start_epoch() {
    for (index_t i = 0; i < n_; ++i) order_[i] = i;
    if (opt_.shuffle)
      for (index_t i = n_ - 1; i >= 1; --i)
        std::swap(order_[i], order_[gen_->below(static_cast<std::uint64_t>(i + 1))]);
    position_ = 0;
  }

  Tensor<T> inputs_;
  std::vector<index_t> labels_;
  Tensor<T> targets_;
  BatchOptions opt_;
  Generator* gen_;
  index_t n_ = 0, bsz_ = 0;
  std::vector<index_t> order_;
  index_t position_ = 0;
  Tensor<T> in_buf_, tgt_buf_, batch_in_, batch_tgt_;
  std::vector<index_t> batch_labels_;
  index_t count_ = 0;
  bool have_one_hot_ = false;
};

}  // namespace grokalign
