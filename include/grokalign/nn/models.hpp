#pragma once
// The paper's models, built from the layers:
//   make_mlp          bias-free ReLU MLP of the MNIST runs (784-196-196-196-10 at depth 4)
//   make_cnn          the 6-conv CNN of the delayed-robustness run
//   make_transformer  the modular-addition transformer
#include <string>

#include "grokalign/nn/activation.hpp"
#include "grokalign/nn/conv.hpp"
#include "grokalign/nn/init.hpp"
#include "grokalign/nn/linear.hpp"
#include "grokalign/nn/sequential.hpp"
#include "grokalign/nn/transformer.hpp"

namespace grokalign::nn {

// `depth` Linear layers with ReLU between them: in -> width -> ... -> width -> out, named
// "0.weight", "2.weight", ... (and "k.bias" with bias). PyTorch's default initialisation;
// apply an init scale afterwards with scale_parameters.
template <Scalar T>
Sequential<T> make_mlp(index_t in, index_t width, int depth, index_t out, bool bias,
                       Generator& gen) {
  if (depth < 1)
    grokalign::detail::throw_shape("make_mlp",
                                   "depth (number of Linear layers) must be at "
                                   "least 1, got " +
                                       std::to_string(depth));
  Sequential<T> mlp;
  for (int i = 0; i < depth; ++i) {
    const index_t fan_in = i == 0 ? in : width, fan_out = i == depth - 1 ? out : width;
    mlp.push_back(Linear<T>(fan_in, fan_out, bias, gen));
    if (i != depth - 1) mlp.push_back(ReLU<T>());
  }
  return mlp;
}

// The delayed-robustness CNN (reference defaults, filters = 32):
//   0 Conv(c, f)    2 Conv(f, f, stride 2)    4 Conv(f, 2f)    6 Conv(2f, 2f, stride 2)
//   8 Conv(2f, 4f)  10 Conv(4f, 4f, stride 2)   (3x3, padding 1, no bias, ReLU after each)
//   12 AvgPool2d(2) 13 AvgPool2d(2) 14 Flatten  15 Linear(., 128) 16 ReLU 17 Linear(128, classes)
// Both pools come after the last convolution, as in the reference: the three stride-2
// convolutions take 32x32 to 4x4 and 28x28 to 4x4 as well (28 -> 14 -> 7 -> 4), and the
// pools take 4x4 to 1x1, so the first Linear sees 4f features for both image sizes (other
// sizes work when the pools have at least 2x2 to average). Linear layers have no bias
// either, as in the reference. Every Conv2d and Linear weight is drawn Kaiming normal,
// fan_out, ReLU gain: N(0, 2 / fan_out).
template <Scalar T>
Sequential<T> make_cnn(index_t in_channels, index_t image_size, index_t classes, Generator& gen,
                       index_t filters = 32) {
  struct ConvSpec {
    index_t out, stride;
  };
  const ConvSpec convs[] = {{filters, 1},     {filters, 2},     {2 * filters, 1},
                            {2 * filters, 2}, {4 * filters, 1}, {4 * filters, 2}};
  Sequential<T> cnn;
  index_t channels = in_channels, size = image_size;
  for (const auto& c : convs) {
    Conv2d<T> conv(channels, c.out, 3, c.stride, 1, false, gen);
    size = conv.output_size(size);
    channels = c.out;
    cnn.push_back(std::move(conv));
    cnn.push_back(ReLU<T>());
  }
  for (int i = 0; i < 2; ++i) {
    if (size < 2)
      grokalign::detail::throw_shape("make_cnn",
                                     "images of size " + std::to_string(image_size) +
                                         " shrink below the 2x2 the average pools need");
    AvgPool2d<T> pool(2);
    size = pool.output_size(size);
    cnn.push_back(std::move(pool));
  }
  cnn.push_back(Flatten<T>());
  cnn.push_back(Linear<T>(channels * size * size, 128, false, gen));
  cnn.push_back(ReLU<T>());
  cnn.push_back(Linear<T>(128, classes, false, gen));
  init::kaiming_normal_fan_out_relu(cnn, gen);
  return cnn;
}

template <Scalar T>
Transformer<T> make_transformer(const TransformerConfig& config, Generator& gen) {
  return Transformer<T>(config, gen);
}

}  // namespace grokalign::nn
