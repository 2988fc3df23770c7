// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../core/float16.hpp"
#include "../detail/bits.hpp"
#include "common.hpp"

#include <cmath>
#include <limits>
#include <optional>
#include <string_view>

namespace gradcomp {

/// Threshold-v (Strom 2015): keeps every entry with |x_i| >= v.
///
/// Contract
/// - Keeps x_i iff |x_i| >= v and x_i != 0 (the paper and its code use >=; GRACE uses >). Zeros
///   are never sent: they decode to the same value. v = 0 therefore keeps all non-zeros.
/// - The comparison is exact: v is rounded up to the nearest float, which is equivalent for float
///   magnitudes. Variable count; elementwise and deterministic, so layer-wise and entire-model give
///   identical results. Biased; Omega = 0; no contraction guarantee (all |x_i| < v sends nothing).
/// - Payload: sparse. Parameter: v >= 0, finite.
struct threshold_v {
  static constexpr compressor_id id = compressor_id::threshold_v;
  static constexpr std::string_view name = "threshold_v";
  static constexpr bool is_unbiased = false;
  static constexpr bool is_elementwise = true;
  using payload_kind = sparse_payload;

  double threshold = 0.001;

  void validate() const {
    detail::require(std::isfinite(threshold) && threshold >= 0.0, errc::invalid_parameter,
                    "threshold_v.threshold must be finite and >= 0, got " +
                        std::to_string(threshold));
  }
  [[nodiscard]] threshold_v with_parameter(double v) const {
    threshold_v c{v};
    c.validate();
    return c;
  }
  [[nodiscard]] std::optional<double> omega(std::size_t) const { return 0.0; }
  [[nodiscard]] std::uint64_t parameter_word() const { return detail::double_word(threshold); }
  [[nodiscard]] std::size_t max_selected(std::size_t n) const { return n; }
  /// The smallest float >= threshold: |x| >= v  <=>  |x| >= float_threshold() for float x.
  [[nodiscard]] float float_threshold() const noexcept {
    const auto f = static_cast<float>(threshold);
    return static_cast<double>(f) >= threshold
               ? f
               : std::nextafter(f, std::numeric_limits<float>::infinity());
  }

  [[nodiscard]] bool indices_implied() const noexcept { return false; }
  [[nodiscard]] float value_scale(std::size_t, std::size_t) const noexcept { return 1.0f; }
  static constexpr bool needs_span_max = false;

  /// The selection rule: |x| bits >= the lowest kept bits (at least 1: zeros are never kept).
  struct at_least_rule {
    static constexpr bool keep_is_abs_bits_at_least = true;
    std::uint32_t lowest_bits = 1;
    template <class T>
    [[nodiscard]] GRADCOMP_HOST_DEVICE bool keep(const T* xs, std::uint64_t i) const noexcept {
      return detail::abs_bits(to_float(xs[i])) >= lowest_bits;
    }
  };
  [[nodiscard]] at_least_rule rule(const span_context&) const noexcept {
    const std::uint32_t t = detail::float_bits(float_threshold());
    return {t == 0 ? 1u : t};
  }
  friend bool operator==(const threshold_v&, const threshold_v&) = default;
};

} // namespace gradcomp
