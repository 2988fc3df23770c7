// SPDX-License-Identifier: Apache-2.0
#pragma once

/// @file
/// libtorch <-> gradcomp without copies (needs libtorch; gradcomp.hpp does not include it): a
/// module's parameters become one gradcomp layout (one layer per parameter tensor, in
/// registration order), and both the parameters and their gradients are re-seated as views into
/// flat float buffers, so the gradient autograd writes *is* the std::span<const float> a gradcomp
/// worker compresses, and one flat update pass changes the model. Gradients for several
/// simulated workers live in one buffer each: point the module's .grad tensors at worker r's
/// buffer (use_gradients(r)) before its backward pass. A trainer with one gradient buffer
/// compresses gradient(0) with any codec and writes parameters() in place. The Python package
/// has the same bridge: gradcomp.torch.FlatParameters.

#include "../layout/model_layout.hpp"

#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <torch/torch.h>
#include <vector>

namespace gradcomp {

class torch_bridge {
public:
  /// Re-seats every parameter of `module` in one flat buffer (values kept) and prepares
  /// `gradient_buffers` flat gradient buffers. Parameters must be float32, on the CPU.
  torch_bridge(torch::nn::Module& module, std::size_t gradient_buffers) {
    std::vector<layer_info> layers;
    std::size_t offset = 0;
    for (const auto& item : module.named_parameters(/*recurse=*/true)) {
      const torch::Tensor& p = item.value();
      if (p.scalar_type() != torch::kFloat32 || !p.device().is_cpu()) {
        throw std::invalid_argument("torch_bridge: parameter " + item.key() +
                                    " is not a float32 CPU tensor");
      }
      params_.push_back(p);
      const auto size = static_cast<std::size_t>(p.numel());
      // rows: the first dimension of a matrix or convolution kernel (low-rank compressors)
      const auto rows = p.dim() >= 2 ? static_cast<std::size_t>(p.size(0)) : std::size_t{0};
      layers.push_back({item.key(), offset, size, rows});
      offset += size;
    }
    layout_ = model_layout::from_layers(std::move(layers));
    const auto total = static_cast<std::int64_t>(layout_.total_size());
    flat_params_ = torch::empty({total}, torch::kFloat32);
    {
      torch::NoGradGuard no_grad;
      for (std::size_t i = 0; i < params_.size(); ++i) {
        torch::Tensor view = slice(flat_params_, i);
        view.copy_(params_[i]);
        params_[i].set_data(view); // the parameter now aliases the flat buffer
      }
    }
    for (std::size_t r = 0; r < gradient_buffers; ++r) {
      grads_.push_back(torch::zeros({total}, torch::kFloat32));
    }
  }

  [[nodiscard]] const model_layout& layout() const noexcept { return layout_; }
  [[nodiscard]] std::size_t buffers() const noexcept { return grads_.size(); }

  /// The parameters, all of them, as one span (writes change the module).
  [[nodiscard]] std::span<float> parameters() {
    return {flat_params_.data_ptr<float>(), layout_.total_size()};
  }
  /// Gradient buffer r as one span.
  [[nodiscard]] std::span<float> gradient(std::size_t r) {
    return {grads_.at(r).data_ptr<float>(), layout_.total_size()};
  }

  /// Points every parameter's .grad at buffer r, zeroed: the next backward() accumulates there.
  void use_gradients(std::size_t r) {
    torch::Tensor& g = grads_.at(r);
    g.zero_();
    for (std::size_t i = 0; i < params_.size(); ++i) {
      params_[i].mutable_grad() = slice(g, i);
    }
  }

  /// Throws unless every parameter's .grad still aliases buffer r (autograd replaced a grad
  /// instead of accumulating into it: the spans would miss that gradient).
  void check_gradients_in(std::size_t r) const {
    const float* base = grads_.at(r).data_ptr<float>();
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const torch::Tensor& g = params_[i].grad();
      if (!g.defined() || g.data_ptr<float>() != base + layout_[i].offset) {
        throw std::runtime_error("torch_bridge: the gradient of " + layout_[i].name +
                                 " no longer lives in the flat buffer");
      }
    }
  }

private:
  torch::Tensor slice(const torch::Tensor& flat, std::size_t i) const {
    const auto& l = layout_[i];
    return flat.narrow(0, static_cast<std::int64_t>(l.offset), static_cast<std::int64_t>(l.size))
        .view(params_[i].sizes());
  }

  model_layout layout_;
  std::vector<torch::Tensor> params_;
  torch::Tensor flat_params_;
  std::vector<torch::Tensor> grads_;
};

} // namespace gradcomp
