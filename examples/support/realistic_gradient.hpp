// SPDX-License-Identifier: Apache-2.0
// Synthetic gradients with per-layer scales, shared by the examples.
#pragma once

#include <gradcomp/layout/model_layout.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace gradcomp::examples {

/// Gradients whose scale differs per layer, as in real networks: each tensor gets its own
/// standard deviation spread over three orders of magnitude (biases and batch-norm parameters
/// larger, big convolutions smaller), with Student-t(3) tails.
inline std::vector<float> realistic_gradient(const model_layout& layout, std::uint64_t seed) {
  std::vector<float> g(layout.total_size());
  std::mt19937_64 rng(seed);
  std::student_t_distribution<float> t3(3.0f);
  for (const layer_info& l : layout.layers()) {
    const double size_factor = std::log10(static_cast<double>(l.size) + 10.0); // 1 .. 6.4
    const double sigma = 1e-2 * std::pow(10.0, -0.45 * size_factor) *
                         std::exp(std::normal_distribution<double>(0.0, 0.5)(rng));
    for (std::size_t i = l.offset; i < l.offset + l.size; ++i) {
      g[i] = static_cast<float>(sigma) * t3(rng);
    }
  }
  return g;
}

} // namespace gradcomp::examples
