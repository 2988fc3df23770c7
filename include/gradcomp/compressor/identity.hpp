// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../detail/dispatch.hpp"
#include "../detail/scan.hpp"
#include "../encoding/code_encodings.hpp"
#include "../math/canonical_sum.hpp"
#include "common.hpp"
#include "mixins.hpp"

#include <optional>
#include <string_view>
#include <vector>

namespace gradcomp {

namespace detail {
/// Dense values: the code is the bit pattern of V (fp32 kept as is, fp16/bf16 rounded to nearest
/// even). Invalid codes: non-finite values.
template <gradient_value V>
struct cast_coder {
  static constexpr bool uses_random = false;
  static constexpr unsigned fixed_bits = sizeof(V) * 8;
  /// Inputs at or above this |x| (fp32 bits) would become Inf: encoders reject them.
  static constexpr std::uint32_t overflow_abs_bits = value_traits<V>::overflow_abs_bits;
  [[nodiscard]] unsigned bits() const noexcept { return fixed_bits; }
  [[nodiscard]] GRADCOMP_HOST_DEVICE std::uint32_t code(float x, float,
                                                        std::uint32_t) const noexcept {
    if constexpr (std::is_same_v<V, float>) {
      return float_bits(x);
    } else {
      return from_float<V>(x).bits;
    }
  }
  [[nodiscard]] GRADCOMP_HOST_DEVICE float decode(std::uint32_t code, float) const noexcept {
    if constexpr (std::is_same_v<V, float>) {
      return bits_float(code);
    } else {
      return to_float(V{static_cast<std::uint16_t>(code)});
    }
  }
  [[nodiscard]] GRADCOMP_HOST_DEVICE bool valid(std::uint32_t code) const noexcept {
    return !is_non_finite(decode(code, 0.0f));
  }
};

} // namespace detail

/// The identity: sends every value (dense fp32, or fp16/bf16 rounded to nearest even).
/// Unbiased for fp32 (exact); Omega = 0. Elementwise, deterministic. No parameter.
struct identity : detail::without_parameter<identity>, detail::without_scale {
  static constexpr compressor_id id = compressor_id::identity;
  static constexpr std::string_view name = "identity";
  static constexpr bool is_unbiased = true;
  static constexpr bool is_elementwise = true;
  using payload_kind = dense_payload;

  [[nodiscard]] std::optional<double> omega(std::size_t) const { return 0.0; }
  template <gradient_value V>
  [[nodiscard]] detail::cast_coder<V> coder(const dense<V>&) const {
    return {};
  }
  friend bool operator==(const identity&, const identity&) = default;
};

} // namespace gradcomp
