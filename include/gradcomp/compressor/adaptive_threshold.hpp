// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../core/float16.hpp"
#include "../detail/bits.hpp"
#include "common.hpp"
#include "mixins.hpp"

#include <optional>
#include <string_view>

namespace gradcomp {

/// Adaptive threshold, as the paper ran it: keeps x_i iff |x_i| >= max_j |x_j| / 2 (AdaComp
/// with zero residue and one bin; SPECS.md §1.3.5).
///
/// Contract
/// - The test is 2|x_i| >= max|x| in float, exact (doubling is exact; overflow to Inf compares
///   correctly). Zeros are never kept, so an all-zero span sends nothing. Always keeps the maximum:
///   delta >= 1/n. Deterministic (max is order-independent). Biased; Omega = 0.
/// - Payload: sparse. No parameter (with_parameter rejects overrides).
struct adaptive_threshold : detail::without_parameter<adaptive_threshold> {
  static constexpr compressor_id id = compressor_id::adaptive_threshold;
  static constexpr std::string_view name = "adaptive_threshold";
  static constexpr bool is_unbiased = false;
  static constexpr bool is_elementwise = false;
  using payload_kind = sparse_payload;

  [[nodiscard]] std::optional<double> omega(std::size_t) const { return 0.0; }
  [[nodiscard]] std::size_t max_selected(std::size_t n) const { return n; }

  [[nodiscard]] bool indices_implied() const noexcept { return false; }
  [[nodiscard]] float value_scale(std::size_t, std::size_t) const noexcept { return 1.0f; }
  static constexpr bool needs_span_max = true;

  /// The selection rule: |x| > 0 and 2|x| >= the span's max |x|, in float.
  struct half_max_rule {
    float max_abs = 0.0f;
    template <class T>
    [[nodiscard]] GRADCOMP_HOST_DEVICE bool keep(const T* xs, std::uint64_t i) const noexcept {
      const float a = detail::bits_float(detail::abs_bits(to_float(xs[i])));
      return a > 0.0f && 2.0f * a >= max_abs;
    }
  };
  [[nodiscard]] half_max_rule rule(const span_context& ctx) const noexcept {
    return {detail::bits_float(ctx.max_abs_bits)};
  }
  friend bool operator==(const adaptive_threshold&, const adaptive_threshold&) = default;
};

} // namespace gradcomp
