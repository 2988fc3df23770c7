// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "span_plan.hpp"

#include <string_view>

namespace gradcomp {

/// Entire-model granularity: the whole flat buffer is one span (the paper's "entire model").
struct flat_span {
  static constexpr granularity_id id = granularity_id::flat;
  static constexpr std::string_view name = "flat";

  [[nodiscard]] std::vector<span_desc> plan(const model_layout& layout,
                                            const layer_rules& rules) const {
    detail::require_no_rules(rules, "flat_span");
    return {span_desc{0, layout.total_size(), span_desc::no_layer, true, std::nullopt}};
  }
  friend constexpr bool operator==(flat_span, flat_span) = default;
};

} // namespace gradcomp
