// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bucket_span.hpp"
#include "flat_span.hpp"
#include "layer_span.hpp"
#include "span_plan.hpp"

#include <string_view>
#include <variant>

namespace gradcomp {

/// One of flat_span, layer_span and bucket_span, chosen at run time: a scheme with it is one
/// type for all three, so a registry of schemes instantiates each compressor and encoding once.
/// Messages carry the chosen granularity's id; they are byte for byte those of the scheme with
/// the fixed granularity.
struct any_granularity {
  static constexpr std::string_view name = "any";
  std::variant<flat_span, layer_span, bucket_span> chosen{};

  any_granularity() = default;
  any_granularity(flat_span g) : chosen(g) {}
  any_granularity(layer_span g) : chosen(g) {}
  any_granularity(bucket_span g) : chosen(g) {}

  [[nodiscard]] granularity_id runtime_id() const noexcept {
    return std::visit([](const auto& g) { return std::decay_t<decltype(g)>::id; }, chosen);
  }
  [[nodiscard]] std::string_view runtime_name() const noexcept {
    return std::visit([](const auto& g) { return std::decay_t<decltype(g)>::name; }, chosen);
  }
  [[nodiscard]] std::vector<span_desc> plan(const model_layout& layout,
                                            const layer_rules& rules) const {
    return std::visit([&](const auto& g) { return g.plan(layout, rules); }, chosen);
  }
  friend bool operator==(const any_granularity&, const any_granularity&) = default;
};

} // namespace gradcomp
