// CIFAR-10 binary batches: the input is written as one batch file and read whole, then
// again with a limit.
#include "grokalign/data/cifar10.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = grokalign_fuzz::scratch_dir() / "data_batch_1.bin";
  grokalign_fuzz::write_file(path, data, size);
  grokalign_fuzz::expect_ok_or_error([&] {
    const auto all = grokalign::read_cifar10<float>({path});
    if (all.images.shape()[0] != static_cast<grokalign::index_t>(all.labels.size()))
      __builtin_trap();
    (void)grokalign::read_cifar10<double>({path, path}, 1);
  });
  return 0;
}
