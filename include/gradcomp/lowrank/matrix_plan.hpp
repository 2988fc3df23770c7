// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../encoding/wire_header.hpp"
#include "../error.hpp"
#include "../granularity/span_plan.hpp"
#include "../layout/model_layout.hpp"

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

/// @file
/// How a low-rank compressor (PowerSGD, lowrank/powersgd.hpp) views the flat gradient as
/// matrices, and which of them it compresses.
///
/// Layer-wise: each layer with a known first dimension (layer_info::rows) is a rows x
/// (size / rows) matrix, row-major as the tensor sits in memory (a convolution kernel is
/// out x in*kh*kw, as PyTorch's PowerSGD hook views it). A matrix is compressed at rank
/// r' = min(r, rows, cols) when min_compression_rate * r' * (rows + cols) < rows * cols; vectors,
/// layers of unknown shape and matrices below that rule are sent raw (PyTorch's rule, rate 2).
///
/// Entire model: the flat gradient of d elements is one matrix of rows = ceil(sqrt(d)) and
/// cols = ceil(d / rows), filled row by row; the rows * cols - d elements past d are zeros that
/// are never stored or sent. The same rule decides whether it is compressed.
///
/// Each round of a step has one buffer of fp32 values in plan order: round P holds, per matrix,
/// its P factor (rows x r', row-major) or, for a raw one, its values; round Q holds the Q factors
/// of the compressed matrices only, transposed (r' x cols: Q's columns one after another).

namespace gradcomp {

/// Parameters of PowerSGD (Vogels et al., NeurIPS 2019), shared by every worker of a job.
struct powersgd_options {
  static constexpr std::size_t max_rank = 8;
  std::size_t rank = 2;              ///< r, 1..max_rank
  double min_compression_rate = 2.0; ///< compress when rate * r'(rows + cols) < rows * cols
  bool entire_model = false;         ///< one matrix for the whole model instead of one per layer
  bool error_feedback = true;        ///< keep what the approximation drops for the next step
  std::uint64_t seed = 0;            ///< draws the initial Q (the same on every worker)

  void validate() const {
    detail::require(rank >= 1 && rank <= max_rank, errc::invalid_parameter,
                    "powersgd rank " + std::to_string(rank) + " is not in [1, " +
                        std::to_string(max_rank) + "]");
    detail::require(std::isfinite(min_compression_rate) && min_compression_rate >= 0,
                    errc::invalid_parameter,
                    "powersgd min_compression_rate must be finite and >= 0");
  }
};

/// One matrix of the plan: a range of the flat gradient and how it travels.
struct lowrank_matrix {
  std::string name;      ///< the layer's name, or "model" for the entire-model matrix
  std::size_t begin = 0; ///< first element in the flat gradient
  std::size_t size = 0;  ///< elements (rows * cols minus the entire-model padding)
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::size_t rank = 0;     ///< r' of a compressed matrix; 0: sent raw
  std::size_t p_offset = 0; ///< of its P factor (or raw values) in the round-P buffer, in floats
  std::size_t q_offset = 0; ///< of its Q factor in the round-Q buffer, in floats
  [[nodiscard]] bool compressed() const noexcept { return rank > 0; }
  [[nodiscard]] std::size_t p_floats() const noexcept { return compressed() ? rows * rank : size; }
  [[nodiscard]] std::size_t q_floats() const noexcept { return compressed() ? cols * rank : 0; }
};

/// The matrices of a layout under given options, and the sizes of the two round buffers.
class lowrank_plan {
public:
  lowrank_plan(const model_layout& layout, const powersgd_options& opt)
      : total_(layout.total_size()), rank_(opt.rank), rate_(opt.min_compression_rate),
        entire_model_(opt.entire_model) {
    opt.validate();
    if (opt.entire_model) {
      const std::size_t d = layout.total_size();
      std::size_t rows = d == 0 ? 0 : static_cast<std::size_t>(std::sqrt(static_cast<double>(d)));
      while (rows * rows < d) {
        ++rows;
      }
      add("model", 0, d, rows, rows == 0 ? 0 : (d + rows - 1) / rows);
    } else {
      for (const layer_info& l : layout.layers()) {
        add(l.name, l.offset, l.size, l.rows, l.rows == 0 ? 0 : l.size / l.rows);
      }
    }
  }

  [[nodiscard]] const std::vector<lowrank_matrix>& matrices() const noexcept { return matrices_; }
  [[nodiscard]] std::size_t total_size() const noexcept { return total_; }
  [[nodiscard]] std::size_t p_floats() const noexcept { return p_floats_; }
  [[nodiscard]] std::size_t q_floats() const noexcept { return q_floats_; }
  [[nodiscard]] std::size_t rank() const noexcept { return rank_; }
  [[nodiscard]] bool entire_model() const noexcept { return entire_model_; }
  [[nodiscard]] granularity_id granularity() const noexcept {
    return entire_model_ ? granularity_id::flat : granularity_id::layer;
  }

  /// The plan as wire-format spans (one per matrix; raw ones not compressed).
  [[nodiscard]] std::vector<span_desc> spans() const {
    std::vector<span_desc> out;
    out.reserve(matrices_.size());
    for (std::size_t s = 0; s < matrices_.size(); ++s) {
      span_desc d;
      d.begin = matrices_[s].begin;
      d.size = matrices_[s].size;
      d.layer = entire_model_ ? span_desc::no_layer : s;
      d.compressed = matrices_[s].compressed();
      out.push_back(d);
    }
    return out;
  }

  /// What a message's plan digest must be: the options, then per matrix its shape and rank.
  [[nodiscard]] std::uint64_t digest() const noexcept {
    detail::digest_builder d;
    d.add(rank_);
    d.add(std::bit_cast<std::uint64_t>(rate_));
    d.add(entire_model_ ? 1 : 0);
    for (const lowrank_matrix& m : matrices_) {
      d.add(m.size);
      d.add(m.rows);
      d.add(m.cols);
      d.add(m.rank);
    }
    return d.value();
  }

private:
  void add(const std::string& name, std::size_t begin, std::size_t size, std::size_t rows,
           std::size_t cols) {
    lowrank_matrix m{name, begin, size, rows, cols, 0, p_floats_, q_floats_};
    const std::size_t r = std::min({rank_, rows, cols});
    if (rows >= 2 && cols >= 2 &&
        rate_ * static_cast<double>(r) * static_cast<double>(rows + cols) <
            static_cast<double>(rows) * static_cast<double>(cols)) {
      m.rank = r;
    }
    p_floats_ += m.p_floats();
    q_floats_ += m.q_floats();
    matrices_.push_back(std::move(m));
  }

  std::vector<lowrank_matrix> matrices_;
  std::size_t total_ = 0;
  std::size_t rank_ = 0;
  double rate_ = 0;
  bool entire_model_ = false;
  std::size_t p_floats_ = 0;
  std::size_t q_floats_ = 0;
};

} // namespace gradcomp
