// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "span_plan.hpp"

#include <string_view>

namespace gradcomp {

/// Layer-wise granularity: one span per layer (tensor), as real trainers compress.
struct layer_span {
  static constexpr granularity_id id = granularity_id::layer;
  static constexpr std::string_view name = "layer";

  [[nodiscard]] std::vector<span_desc> plan(const model_layout& layout,
                                            const layer_rules& rules) const {
    std::vector<span_desc> out;
    out.reserve(layout.num_layers());
    for (std::size_t i = 0; i < layout.num_layers(); ++i) {
      out.push_back({layout[i].offset, layout[i].size, i, true, std::nullopt});
    }
    detail::apply_layer_rules(out, layout, rules);
    return out;
  }
  friend constexpr bool operator==(layer_span, layer_span) = default;
};

} // namespace gradcomp
