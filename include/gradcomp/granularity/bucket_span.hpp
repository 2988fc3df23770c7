// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "span_plan.hpp"

#include <algorithm>
#include <string_view>

namespace gradcomp {

/// Fixed-size chunks of the flat buffer, crossing layer boundaries (CGX/GRACE-style fusion
/// buckets); the last bucket may be shorter.
struct bucket_span {
  static constexpr granularity_id id = granularity_id::bucket;
  static constexpr std::string_view name = "bucket";
  std::size_t bucket_size = std::size_t{1} << 20;

  [[nodiscard]] std::vector<span_desc> plan(const model_layout& layout,
                                            const layer_rules& rules) const {
    detail::require(bucket_size > 0, errc::invalid_parameter,
                    "bucket_span.bucket_size must be > 0");
    detail::require_no_rules(rules, "bucket_span");
    std::vector<span_desc> out;
    for (std::size_t b = 0; b < layout.total_size(); b += bucket_size) {
      const std::size_t n = std::min(bucket_size, layout.total_size() - b);
      out.push_back({b, n, span_desc::no_layer, true, std::nullopt});
    }
    return out;
  }
  friend constexpr bool operator==(bucket_span, bucket_span) = default;
};

} // namespace gradcomp
