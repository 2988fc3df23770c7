// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../error.hpp"
#include "../layout/model_layout.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

/// @file
/// The common currency of granularities: a plan of spans, each compressed independently, and the
/// per-layer rules that can exempt a layer or change its compressor parameter.

namespace gradcomp {

enum class granularity_id : std::uint8_t { flat = 1, layer = 2, bucket = 3 };

/// One independently compressed range of the flat buffer.
struct span_desc {
  static constexpr std::size_t no_layer = std::numeric_limits<std::size_t>::max();
  std::size_t begin = 0;           ///< global offset in the flat buffer
  std::size_t size = 0;            ///< number of elements
  std::size_t layer = no_layer;    ///< the layer this span is, for layer_span; else no_layer
  bool compressed = true;          ///< false: sent raw (an identity rule applied)
  std::optional<double> parameter; ///< per-layer override of the compressor's main parameter
  friend bool operator==(const span_desc&, const span_desc&) = default;
};

/// Overrides the compressor's main parameter (ratio, threshold, levels, ...) for one layer.
struct layer_override {
  std::string layer;
  double parameter = 0;
};

/// Per-layer rules; they need a granularity whose spans are layers (layer_span).
struct layer_rules {
  /// Layers with fewer elements than this are sent uncompressed (e.g. biases and batch norm).
  std::size_t identity_below = 0;
  /// Main-parameter overrides by layer name; each name must exist in the layout.
  std::vector<layer_override> overrides;

  [[nodiscard]] bool empty() const noexcept { return identity_below == 0 && overrides.empty(); }
};

namespace detail {
/// The wire id of granularity g: G::id, or g.runtime_id() for a granularity chosen at run time.
template <class G>
[[nodiscard]] constexpr granularity_id granularity_id_of(const G& g) noexcept {
  if constexpr (requires { g.runtime_id(); }) {
    return g.runtime_id();
  } else {
    return G::id;
  }
}
/// Applies rules to a layer-wise plan; rejects unknown layer names and non-finite parameters.
inline void apply_layer_rules(std::vector<span_desc>& plan, const model_layout& layout,
                              const layer_rules& rules) {
  for (span_desc& s : plan) {
    s.compressed = s.size >= rules.identity_below;
  }
  for (const layer_override& o : rules.overrides) {
    const std::optional<std::size_t> idx = layout.find(o.layer);
    require(idx.has_value(), errc::invalid_parameter,
            "layer_rules: override names unknown layer '" + o.layer + "'");
    require(std::isfinite(o.parameter), errc::invalid_parameter,
            "layer_rules: override for layer '" + o.layer + "' is not finite");
    plan[*idx].parameter = o.parameter;
  }
}
inline void require_no_rules(const layer_rules& rules, const char* granularity) {
  require(rules.empty(), errc::invalid_parameter,
          std::string("layer_rules need layer_span granularity; ") + granularity +
              " has no per-layer spans");
}
} // namespace detail

} // namespace gradcomp
