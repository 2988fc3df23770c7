// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "model_layout.hpp"

#include <cstddef>
#include <string>
#include <vector>

/// @file
/// The paper's models as layer tables with their real per-tensor sizes, in PyTorch registration
/// order (one entry per parameter tensor), with the first dimension of each weight (its rows).
/// Shared by tests, benchmarks and examples.

namespace gradcomp::models {

namespace detail {
struct table_builder {
  std::vector<layer_info> layers;
  std::size_t offset = 0;
  /// A tensor of `size` elements whose first dimension is `rows` (0: a vector).
  void add(std::string name, std::size_t size, std::size_t rows = 0) {
    layers.push_back({std::move(name), offset, size, rows});
    offset += size;
  }
  void conv(const std::string& name, std::size_t in, std::size_t out, std::size_t k, bool bias) {
    add(name + ".weight", out * in * k * k, out);
    if (bias) {
      add(name + ".bias", out);
    }
  }
  void bn(const std::string& name, std::size_t c) {
    add(name + ".weight", c);
    add(name + ".bias", c);
  }
  void linear(const std::string& name, std::size_t in, std::size_t out, bool bias) {
    add(name + ".weight", out * in, out);
    if (bias) {
      add(name + ".bias", out);
    }
  }
  [[nodiscard]] model_layout build() { return model_layout::from_layers(std::move(layers)); }
};
} // namespace detail

/// AlexNet for CIFAR-10 as used in PyTorch CIFAR code bases: five convolutions (11x11/4, 5x5,
/// 3x3 x3) and one linear classifier, all with biases: 12 tensors, 2,472,266 parameters.
inline model_layout alexnet_cifar10() {
  detail::table_builder t;
  t.conv("features.0", 3, 64, 11, true);
  t.conv("features.3", 64, 192, 5, true);
  t.conv("features.6", 192, 384, 3, true);
  t.conv("features.8", 384, 256, 3, true);
  t.conv("features.10", 256, 256, 3, true);
  t.linear("classifier", 256, 10, true);
  return t.build();
}

/// The Myrtle.ai DAWNBench ResNet-9 for CIFAR-10 (the paper's code, dawn.py): bias-free 3x3
/// convolutions with batch norm, channels 64-128-256-512, residual pairs after layers 1 and 3,
/// bias-free 512->10 classifier: 25 tensors, 6,573,120 parameters.
inline model_layout resnet9_cifar10() {
  detail::table_builder t;
  auto conv_bn = [&](const std::string& name, std::size_t in, std::size_t out) {
    t.conv(name + ".conv", in, out, 3, false);
    t.bn(name + ".bn", out);
  };
  conv_bn("prep", 3, 64);
  conv_bn("layer1", 64, 128);
  conv_bn("layer1.residual.res1", 128, 128);
  conv_bn("layer1.residual.res2", 128, 128);
  conv_bn("layer2", 128, 256);
  conv_bn("layer3", 256, 512);
  conv_bn("layer3.residual.res1", 512, 512);
  conv_bn("layer3.residual.res2", 512, 512);
  t.linear("linear", 512, 10, false);
  return t.build();
}

/// torchvision ResNet-50 for ImageNet: 161 tensors, 25,557,032 parameters.
inline model_layout resnet50_imagenet() {
  detail::table_builder t;
  t.conv("conv1", 3, 64, 7, false);
  t.bn("bn1", 64);
  const std::size_t blocks[4] = {3, 4, 6, 3};
  const std::size_t widths[4] = {64, 128, 256, 512};
  std::size_t in = 64;
  for (std::size_t l = 0; l < 4; ++l) {
    for (std::size_t b = 0; b < blocks[l]; ++b) {
      const std::string p = "layer" + std::to_string(l + 1) + "." + std::to_string(b);
      const std::size_t w = widths[l];
      t.conv(p + ".conv1", in, w, 1, false);
      t.bn(p + ".bn1", w);
      t.conv(p + ".conv2", w, w, 3, false);
      t.bn(p + ".bn2", w);
      t.conv(p + ".conv3", w, 4 * w, 1, false);
      t.bn(p + ".bn3", 4 * w);
      if (b == 0) {
        t.conv(p + ".downsample.0", in, 4 * w, 1, false);
        t.bn(p + ".downsample.1", 4 * w);
      }
      in = 4 * w;
    }
  }
  t.linear("fc", 2048, 1000, true);
  return t.build();
}

} // namespace gradcomp::models
