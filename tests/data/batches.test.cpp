// The batch iterator: every sample once per epoch, drop_last, one-hot and regression
// targets, buffers reused (no allocation per batch), and an order that restores exactly.
#include <algorithm>
#include <catch2/catch.hpp>
#include <grokalign/data/batches.hpp>
#include <vector>

using namespace grokalign;
using Catch::Matchers::Contains;

namespace {

// Sample i: inputs [2] = {i, 10 + i}, label i % 3.
Tensor<double> inputs(index_t n) {
  auto x = Tensor<double>::empty(Shape{n, 2});
  for (index_t i = 0; i < n; ++i) {
    x.at(i, 0) = double(i);
    x.at(i, 1) = double(10 + i);
  }
  return x;
}
std::vector<index_t> labels(index_t n) {
  std::vector<index_t> l(n);
  for (index_t i = 0; i < n; ++i) l[i] = i % 3;
  return l;
}

// The sample ids of one epoch, checking each batch's rows, labels and one-hot targets.
std::vector<index_t> run_epoch(BatchIterator<double>& it, std::vector<index_t>* sizes = nullptr) {
  std::vector<index_t> ids;
  for (index_t b = 0; b < it.batches_per_epoch(); ++b) {
    it.next();
    const auto& x = it.inputs();
    if (sizes) sizes->push_back(x.shape()[0]);
    REQUIRE(static_cast<index_t>(it.labels().size()) == x.shape()[0]);
    for (index_t r = 0; r < x.shape()[0]; ++r) {
      const index_t id = static_cast<index_t>(x.at(r, 0));
      REQUIRE(x.at(r, 1) == double(10 + id));
      REQUIRE(it.labels()[r] == id % 3);
      if (it.targets().defined())
        for (index_t c = 0; c < 3; ++c) REQUIRE(it.targets().at(r, c) == (c == id % 3 ? 1.0 : 0.0));
      ids.push_back(id);
    }
  }
  REQUIRE(it.epoch_done());
  return ids;
}

}  // namespace

TEST_CASE("Batches cover every sample once per epoch, reshuffled each epoch", "[data]") {
  Generator gen(1);
  BatchIterator<double> it(inputs(10), labels(10), {.batch_size = 4, .one_hot_classes = 3}, gen);
  CHECK(it.batches_per_epoch() == 3);
  std::vector<index_t> sizes;
  auto e1 = run_epoch(it, &sizes);
  CHECK(sizes == std::vector<index_t>{4, 4, 2});
  auto e2 = run_epoch(it);
  CHECK(e1 != e2);  // a new permutation (1 chance in 10! of failing for a fixed seed: none)
  for (auto* e : {&e1, &e2}) {
    std::sort(e->begin(), e->end());
    for (index_t i = 0; i < 10; ++i) CHECK((*e)[i] == i);
  }

  // drop_last: 2 full batches, the same 8 distinct samples never repeated in an epoch.
  BatchIterator<double> dl(inputs(10), labels(10), {.batch_size = 4, .drop_last = true}, gen);
  CHECK(dl.batches_per_epoch() == 2);
  sizes.clear();
  auto d = run_epoch(dl, &sizes);
  CHECK(sizes == std::vector<index_t>{4, 4});
  std::sort(d.begin(), d.end());
  CHECK(std::unique(d.begin(), d.end()) == d.end());

  // No shuffle: data order, every epoch; the generator is not touched.
  Generator untouched(5), reference(5);
  BatchIterator<double> plain(inputs(5), labels(5), {.batch_size = 2, .shuffle = false}, untouched);
  CHECK(run_epoch(plain) == std::vector<index_t>{0, 1, 2, 3, 4});
  CHECK(run_epoch(plain) == std::vector<index_t>{0, 1, 2, 3, 4});
  CHECK(untouched.next_u64() == reference.next_u64());
}

TEST_CASE("Batch buffers are reused: nothing is allocated per batch", "[data]") {
  Generator gen(2);
  BatchIterator<double> it(inputs(10), labels(10), {.batch_size = 4, .one_hot_classes = 3}, gen);
  it.next();
  const double* x = it.inputs().data();
  const double* t = it.targets().data();
  const index_t* l = it.labels().data();
  for (int b = 0; b < 20; ++b) {
    it.next();
    REQUIRE(it.inputs().data() == x);
    REQUIRE(it.targets().data() == t);
    REQUIRE(it.labels().data() == l);
  }
  // Regression targets are batched alongside the inputs.
  auto y = Tensor<double>::empty(Shape{6, 1});
  for (index_t i = 0; i < 6; ++i) y.at(i, 0) = 100.0 + double(i);
  BatchIterator<double> reg(inputs(6), {}, y, {.batch_size = 6}, gen);
  reg.next();
  for (index_t r = 0; r < 6; ++r) CHECK(reg.targets().at(r, 0) == 100.0 + reg.inputs().at(r, 0));
  CHECK(reg.labels().empty());
}

TEST_CASE("A batch iterator's order restores exactly", "[data]") {
  Generator gen(3);
  BatchIterator<double> it(inputs(9), labels(9), {.batch_size = 2}, gen);
  run_epoch(it);
  it.next();
  it.next();
  // Checkpoint: generator, order, position.
  const Generator saved_gen = gen;
  const auto order = it.order();
  const index_t position = it.position();
  CHECK(position == 4);
  std::vector<double> expected;
  for (int b = 0; b < 8; ++b) {  // through the end of this epoch and into the next
    it.next();
    for (double v : it.inputs()) expected.push_back(v);
  }

  Generator gen2 = saved_gen;
  BatchIterator<double> resumed(inputs(9), labels(9), {.batch_size = 2}, gen2);
  resumed.restore(order, position);
  std::vector<double> got;
  for (int b = 0; b < 8; ++b) {
    resumed.next();
    for (double v : resumed.inputs()) got.push_back(v);
  }
  CHECK(got == expected);

  REQUIRE_THROWS_WITH(resumed.restore({0, 1, 2}, 0), Contains("3 entries"));
  REQUIRE_THROWS_WITH(resumed.restore({0, 1, 2, 3, 4, 5, 6, 7, 7}, 0),
                      Contains("not a permutation"));
  REQUIRE_THROWS_WITH(resumed.restore({0, 1, 2, 3, 4, 5, 6, 7, 9}, 0),
                      Contains("not a permutation"));
  REQUIRE_THROWS_WITH(resumed.restore(order, 10), Contains("position 10"));
}

TEST_CASE("Bad batch iterator settings are refused", "[data][errors]") {
  Generator gen(0);
  REQUIRE_THROWS_WITH(BatchIterator<double>(inputs(4), labels(4), {.batch_size = 0}, gen),
                      Contains("batch size"));
  REQUIRE_THROWS_WITH(BatchIterator<double>(inputs(4), labels(3), {.batch_size = 2}, gen),
                      Contains("3 labels for 4 inputs"));
  REQUIRE_THROWS_WITH(
      BatchIterator<double>(inputs(4), labels(4), {.batch_size = 2, .one_hot_classes = 2}, gen),
      Contains("label 2"));
  REQUIRE_THROWS_WITH(
      BatchIterator<double>(inputs(4), labels(4), {.batch_size = 5, .drop_last = true}, gen),
      Contains("leaves no batch"));
}
