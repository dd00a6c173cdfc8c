// State-dict folder: the input is the one .npy file of a one-parameter model.
#include "grokalign/io/state_dict.hpp"
#include "fuzz_support.hpp"
#include "grokalign/reverse/var.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto dir = grokalign_fuzz::scratch_dir() / "state_dict";
  std::filesystem::create_directories(dir);
  grokalign_fuzz::write_file(dir / "weight.npy", data, size);
  grokalign::Var<double> w(grokalign::Tensor<double>::zeros({2, 3}), true);
  std::vector<std::pair<std::string, grokalign::Var<double>>> named{{"weight", w}};
  grokalign_fuzz::expect_ok_or_error([&] { (void)grokalign::load_state_dict(dir, named); });
  return 0;
}
