// SPDX-License-Identifier: Apache-2.0
#pragma once

// A multilayer perceptron (ReLU, softmax cross-entropy) in plain C++, parameters in one flat
// buffer whose model_layout has one layer per tensor (fc1.weight, fc1.bias, ...): the smallest
// real model on which layer-wise and entire-model compression differ. Deterministic: the same
// batch gives the same gradient bits on every run and in every process.

#include "fashion_mnist.hpp"

#include <gradcomp/layout/model_layout.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace gradcomp::examples {

class mlp {
public:
  /// widths: input, hidden..., classes (e.g. {784, 128, 64, 10}).
  explicit mlp(std::vector<std::size_t> widths) : widths_(std::move(widths)) {
    std::vector<std::size_t> sizes;
    std::vector<std::string> names;
    for (std::size_t l = 0; l + 1 < widths_.size(); ++l) {
      const std::string name = "fc" + std::to_string(l + 1);
      weight_at_.push_back(total_);
      sizes.push_back(widths_[l + 1] * widths_[l]);
      names.push_back(name + ".weight");
      total_ += sizes.back();
      bias_at_.push_back(total_);
      sizes.push_back(widths_[l + 1]);
      names.push_back(name + ".bias");
      total_ += sizes.back();
    }
    layout_ = model_layout::from_sizes(sizes, names);
    params_.assign(total_, 0.0f);
    act_.resize(widths_.size());
    delta_.resize(widths_.size());
    for (std::size_t l = 0; l < widths_.size(); ++l) {
      act_[l].resize(widths_[l]);
      delta_[l].resize(widths_[l]);
    }
  }

  [[nodiscard]] const model_layout& layout() const noexcept { return layout_; }
  [[nodiscard]] std::span<float> params() noexcept { return params_; }
  [[nodiscard]] std::span<const float> params() const noexcept { return params_; }

  /// He-normal weights, zero biases.
  void init(std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    for (std::size_t l = 0; l + 1 < widths_.size(); ++l) {
      std::normal_distribution<float> nd(0.0f, std::sqrt(2.0f / static_cast<float>(widths_[l])));
      for (std::size_t i = 0; i < widths_[l + 1] * widths_[l]; ++i) {
        params_[weight_at_[l] + i] = nd(rng);
      }
    }
  }

  /// grad <- the gradient of the mean cross-entropy over the examples `idx`; returns the summed
  /// loss.
  double gradient(const image_set& data, std::span<const std::size_t> idx, std::span<float> grad) {
    std::fill(grad.begin(), grad.end(), 0.0f);
    double loss = 0;
    const float inv = 1.0f / static_cast<float>(std::max<std::size_t>(idx.size(), 1));
    for (const std::size_t i : idx) {
      loss += forward(data, i);
      backward(data.labels[i], inv, grad);
    }
    return loss;
  }

  /// The predicted class of example i.
  std::size_t predict(const image_set& data, std::size_t i) {
    (void)forward(data, i);
    const auto& out = act_.back();
    return static_cast<std::size_t>(std::max_element(out.begin(), out.end()) - out.begin());
  }

  double accuracy(const image_set& data) {
    std::size_t right = 0;
    for (std::size_t i = 0; i < data.count; ++i) {
      right += predict(data, i) == data.labels[i] ? 1 : 0;
    }
    return data.count ? static_cast<double>(right) / static_cast<double>(data.count) : 0.0;
  }

private:
  /// Activations of example i; the last layer holds softmax probabilities. Returns its loss.
  double forward(const image_set& data, std::size_t i) {
    std::copy_n(data.images.begin() + static_cast<std::ptrdiff_t>(i * data.pixels), widths_[0],
                act_[0].begin());
    const std::size_t layers = widths_.size() - 1;
    for (std::size_t l = 0; l < layers; ++l) {
      const std::size_t in = widths_[l], out = widths_[l + 1];
      const float* w = params_.data() + weight_at_[l];
      const float* b = params_.data() + bias_at_[l];
      for (std::size_t o = 0; o < out; ++o) {
        float s = 0.0f;
        for (std::size_t k = 0; k < in; ++k) {
          s += w[o * in + k] * act_[l][k];
        }
        s += b[o];
        act_[l + 1][o] = (l + 1 < layers) ? std::max(s, 0.0f) : s;
      }
    }
    auto& z = act_.back();
    const float m = *std::max_element(z.begin(), z.end());
    float sum = 0.0f;
    for (auto& v : z) {
      v = std::exp(v - m);
      sum += v;
    }
    for (auto& v : z) {
      v /= sum;
    }
    return -std::log(std::max(z[data.labels[i]], 1e-30f));
  }

  /// Adds scale * d(loss)/d(params) of the last forward example to grad.
  void backward(std::uint8_t label, float scale, std::span<float> grad) {
    const std::size_t layers = widths_.size() - 1;
    delta_[layers] = act_[layers];
    delta_[layers][label] -= 1.0f;
    for (std::size_t l = layers; l-- > 0;) {
      const std::size_t in = widths_[l], out = widths_[l + 1];
      float* gw = grad.data() + weight_at_[l];
      float* gb = grad.data() + bias_at_[l];
      const float* w = params_.data() + weight_at_[l];
      for (std::size_t o = 0; o < out; ++o) {
        const float d = delta_[l + 1][o] * scale;
        gb[o] += d;
        for (std::size_t k = 0; k < in; ++k) {
          gw[o * in + k] += d * act_[l][k];
        }
      }
      if (l == 0) {
        break;
      }
      for (std::size_t k = 0; k < in; ++k) {
        float s = 0.0f;
        for (std::size_t o = 0; o < out; ++o) {
          s += w[o * in + k] * delta_[l + 1][o];
        }
        delta_[l][k] = act_[l][k] > 0.0f ? s : 0.0f;
      }
    }
  }

  std::vector<std::size_t> widths_;
  std::vector<std::size_t> weight_at_, bias_at_;
  std::size_t total_ = 0;
  model_layout layout_;
  std::vector<float> params_;
  std::vector<std::vector<float>> act_, delta_;
};

} // namespace gradcomp::examples
