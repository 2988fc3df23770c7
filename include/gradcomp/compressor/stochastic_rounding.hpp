// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../encoding/code_encodings.hpp"
#include "../math/stochastic_rounding.hpp"
#include "common.hpp"
#include "identity.hpp"
#include "mixins.hpp"

#include <optional>
#include <string_view>
#include <type_traits>
#include <vector>

namespace gradcomp {

namespace detail {
template <class V>
struct stochastic_round_coder : cast_coder<V> {
  static constexpr bool uses_random = true;
  /// SR saturates at the largest finite V instead (documented): only Inf itself is out of range.
  static constexpr std::uint32_t overflow_abs_bits = inf_abs_bits;
  [[nodiscard]] GRADCOMP_HOST_DEVICE math::threshold_word threshold(float x, float) const noexcept {
    if constexpr (std::is_same_v<V, bfloat16>) {
      return math::sr_bf16_threshold(x);
    } else {
      return math::sr_f16_threshold(x);
    }
  }
  [[nodiscard]] GRADCOMP_HOST_DEVICE std::uint32_t code(float x, float,
                                                        std::uint32_t up) const noexcept {
    if constexpr (std::is_same_v<V, bfloat16>) {
      return math::sr_bf16_code(x, up);
    } else {
      return math::sr_f16_code(x, up);
    }
  }
};
} // namespace detail

/// Stochastic rounding of fp32 gradients to a 16-bit float format V (bfloat16 or half).
///
/// Contract: unbiased inside V's finite range (beyond it values saturate to the largest finite
/// V). Relative grid, so Omega <= 2^(-2m)/4 with m mantissa bits: 2^-16 for bf16, 2^-22 for fp16
/// (normal range). Elementwise with index-keyed randomness: layer-wise == entire-model.
/// Payload: dense; the encoding must be dense<V> of the same V. No parameter.
template <class V>
struct stochastic_rounding : detail::without_parameter<stochastic_rounding<V>>,
                             detail::without_scale {
  static_assert(std::is_same_v<V, bfloat16> || std::is_same_v<V, half>,
                "gradcomp::stochastic_rounding<V>: V must be gradcomp::bfloat16 or gradcomp::half");
  static constexpr compressor_id id = compressor_id::stochastic_rounding;
  static constexpr std::string_view name = std::is_same_v<V, bfloat16> ? "sr_bf16" : "sr_f16";
  static constexpr bool is_unbiased = true;
  static constexpr bool is_elementwise = true;
  using payload_kind = dense_payload;
  using target_type = V;

  [[nodiscard]] std::optional<double> omega(std::size_t) const {
    return std::is_same_v<V, bfloat16> ? 0x1p-16 : 0x1p-22;
  }
  [[nodiscard]] std::uint64_t parameter_word() const {
    return static_cast<std::uint64_t>(value_traits<V>::id);
  }
  template <class W>
  [[nodiscard]] detail::stochastic_round_coder<V> coder(const dense<W>&) const {
    static_assert(std::is_same_v<W, V>,
                  "gradcomp: stochastic_rounding<V> must be encoded as dense<V> (same V)");
    return {};
  }
  friend bool operator==(const stochastic_rounding&, const stochastic_rounding&) = default;
};

} // namespace gradcomp
