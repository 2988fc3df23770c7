// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../error.hpp"

#include <cstddef>
#include <initializer_list>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

/// @file
/// A model's layers as they sit in one flat gradient buffer: names, offsets and sizes.

namespace gradcomp {

/// One parameter tensor of the model, as a range of the flat gradient buffer.
struct layer_info {
  std::string name;
  std::size_t offset = 0;
  std::size_t size = 0;
  /// The tensor's first dimension (output channels or features), 0 where unknown: the layer is
  /// then viewed as a rows x (size / rows) matrix (low-rank compressors, lowrank/matrix_plan.hpp).
  std::size_t rows = 0;
  friend bool operator==(const layer_info&, const layer_info&) = default;
};

/// The layers of a model in buffer order. Invariant (checked on construction): the layers tile
/// [0, total_size()) exactly, in order, without gaps or overlaps; empty layers are allowed; names
/// are unique.
class model_layout {
public:
  model_layout() = default;

  /// Layers of the given sizes, back to back. Names default to "layer<i>".
  static model_layout from_sizes(std::span<const std::size_t> sizes,
                                 std::vector<std::string> names = {}) {
    detail::require(names.empty() || names.size() == sizes.size(), errc::invalid_layout,
                    "from_sizes: " + std::to_string(names.size()) + " names for " +
                        std::to_string(sizes.size()) + " layers");
    std::vector<layer_info> layers;
    layers.reserve(sizes.size());
    std::size_t offset = 0;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      detail::require(sizes[i] <= std::numeric_limits<std::size_t>::max() - offset,
                      errc::invalid_layout,
                      "from_sizes: total size overflows at layer " + std::to_string(i));
      layers.push_back(
          {names.empty() ? "layer" + std::to_string(i) : std::move(names[i]), offset, sizes[i]});
      offset += sizes[i];
    }
    return from_layers(std::move(layers));
  }
  static model_layout from_sizes(std::initializer_list<std::size_t> sizes,
                                 std::vector<std::string> names = {}) {
    return from_sizes(std::span<const std::size_t>(sizes.begin(), sizes.size()), std::move(names));
  }

  /// Layers given with explicit offsets; they must tile the buffer from offset 0.
  static model_layout from_layers(std::vector<layer_info> layers) {
    std::size_t expected = 0;
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const layer_info& l = layers[i];
      detail::require(!l.name.empty(), errc::invalid_layout,
                      "layer " + std::to_string(i) + " has an empty name");
      detail::require(l.offset >= expected, errc::invalid_layout,
                      "layer '" + l.name + "' at offset " + std::to_string(l.offset) +
                          " overlaps the previous layer, which ends at " +
                          std::to_string(expected));
      detail::require(l.offset == expected, errc::invalid_layout,
                      "layer '" + l.name + "' starts at " + std::to_string(l.offset) +
                          " but the previous layer ends at " + std::to_string(expected) +
                          " (gaps are not allowed)");
      detail::require(l.size <= std::numeric_limits<std::size_t>::max() - l.offset,
                      errc::invalid_layout, "layer '" + l.name + "' overflows size_t");
      detail::require(l.rows == 0 || l.size % l.rows == 0, errc::invalid_layout,
                      "layer '" + l.name + "' has " + std::to_string(l.size) +
                          " elements, not a whole number of its " + std::to_string(l.rows) +
                          " rows");
      expected = l.offset + l.size;
      for (std::size_t j = 0; j < i; ++j) {
        detail::require(layers[j].name != l.name, errc::invalid_layout,
                        "duplicate layer name '" + l.name + "'");
      }
    }
    model_layout out;
    out.layers_ = std::move(layers);
    out.total_ = expected;
    return out;
  }

  [[nodiscard]] std::size_t num_layers() const noexcept { return layers_.size(); }
  [[nodiscard]] std::size_t total_size() const noexcept { return total_; }
  [[nodiscard]] const std::vector<layer_info>& layers() const noexcept { return layers_; }
  [[nodiscard]] const layer_info& operator[](std::size_t i) const { return layers_.at(i); }
  [[nodiscard]] std::optional<std::size_t> find(std::string_view name) const noexcept {
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      if (layers_[i].name == name) {
        return i;
      }
    }
    return std::nullopt;
  }
  friend bool operator==(const model_layout&, const model_layout&) = default;

private:
  std::vector<layer_info> layers_;
  std::size_t total_ = 0;
};

} // namespace gradcomp
