// IDX reader (MNIST's format), raw or gzip: the bytes as read_idx sees them after reading
// the file, then the image and label views the data loaders take.
#include "grokalign/data/idx.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  grokalign_fuzz::expect_ok_or_error([&] {
    std::vector<std::uint8_t> bytes(data, data + size);
    const std::filesystem::path name = "fuzz.idx";
    if (grokalign::data_detail::is_gzip(bytes))
      bytes = grokalign::data_detail::gunzip("idx", name, bytes);
    const auto idx = grokalign::parse_idx(bytes, name);
    if (idx.dims.size() == 3) (void)grokalign::idx_images<float>(idx, name, 4);
    if (idx.dims.size() == 1) (void)grokalign::idx_labels(idx, name, 10, 8);
  });
  return 0;
}
