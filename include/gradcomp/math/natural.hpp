// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../detail/bits.hpp"
#include "rounding.hpp"

#include <cstdint>

/// @file
/// Natural compression C_nat (Horvath et al. 2019) in exact integer form: |x| = 2^a (1 + m/2^23)
/// rounds up to 2^(a+1) iff the top 23 bits of r are < m, so P(up) = m / 2^23 exactly (no
/// 1/(2^23-1) bias). Float subnormals (biased exponent 0) round to 0 or 2^-126 with P = |x|/2^-126,
/// which keeps them unbiased. The largest exponent saturates at 2^127 (never rounds to Inf).
///
/// 9-bit code: sign << 8 | e, e the biased fp32 exponent (0 = zero, 1..254); e = 255 is invalid.
/// 8-bit code: sign << 7 | c, c in 1..127 meaning 2^(c - 111), i.e. the window 2^-110 ... 2^16;
/// c = 0 is zero. Below the window, values round to 0 or 2^-110 with P = |x| / 2^-110 (unbiased);
/// above it they saturate to 2^16 (biased; gradients that large are outside this format's range).

namespace gradcomp::math {

GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr threshold_word
natural_threshold9(float x) noexcept {
  return threshold_word::of_u32((detail::float_bits(x) & 0x7fffffu) << 9);
}
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr std::uint32_t
natural_code9(float x, std::uint32_t up) noexcept {
  const std::uint32_t bits = detail::float_bits(x);
  std::uint32_t ce = ((bits >> 23) & 0xffu) + up;
  ce = ce < 254u ? ce : 254u; // saturate at 2^127 (never Inf)
  const std::uint32_t sign = (bits >> 31) & (ce != 0 ? 1u : 0u);
  return (sign << 8) | ce;
}
template <class R>
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr std::uint32_t
natural_encode9(float x, const R& r) noexcept {
  return natural_code9(x, r.below(natural_threshold9(x)));
}
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr float
natural_decode9(std::uint32_t code) noexcept {
  const std::uint32_t e = code & 0xffu;
  return detail::bits_float(((code >> 8) << 31) | (e << 23));
}
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr bool
natural_valid9(std::uint32_t code) noexcept {
  const std::uint32_t e = code & 0xffu;
  // bitwise, not short-circuit: no branch in validation loops (they vectorize)
  return static_cast<bool>(static_cast<unsigned>(e != 255u) &
                           (static_cast<unsigned>(e != 0u) | static_cast<unsigned>(code == 0u)));
}

inline constexpr std::uint32_t natural8_exponent_offset = 16; // code c <-> biased exponent c + 16
inline constexpr std::uint32_t natural8_max_code = 127;

GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr threshold_word
natural_threshold8(float x) noexcept {
  // both forms computed, one selected: branch-free, so the block loops vectorize
  const std::uint32_t bits = detail::float_bits(x);
  const bool below_window = ((bits >> 23) & 0xffu) <= natural8_exponent_offset;
  // P(up) below the window, |x| 2^110, clamped to 1 on the (non-negative) bits: the conversions
  // stay in range for every x, and no constant folds into a branch
  const std::uint32_t scaled =
      detail::float_bits(detail::bits_float(bits & 0x7fffffffu) * 0x1p110f);
  const std::uint32_t one = detail::float_bits(1.0f);
  const threshold_word small =
      probability_threshold(detail::bits_float(scaled < one ? scaled : one));
  const threshold_word mantissa = threshold_word::of_u32((bits & 0x7fffffu) << 9);
  const std::uint32_t pick_small = 0u - (below_window ? 1u : 0u); // all ones below the window
  return {(small.high & pick_small) | (mantissa.high & ~pick_small),
          (small.low & pick_small) | (mantissa.low & ~pick_small)};
}
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr std::uint32_t
natural_code8(float x, std::uint32_t up) noexcept {
  const std::uint32_t bits = detail::float_bits(x);
  const std::uint32_t e = (bits >> 23) & 0xffu;
  // below the window: 0 or 1 (2^-110); inside: the shifted exponent, saturated at the top
  const std::uint32_t shifted = e + up - natural8_exponent_offset; // wraps below the window
  const std::uint32_t inside = shifted < natural8_max_code ? shifted : natural8_max_code;
  const std::uint32_t pick_up = 0u - (e <= natural8_exponent_offset ? 1u : 0u);
  const std::uint32_t c = (up & pick_up) | (inside & ~pick_up);
  const std::uint32_t sign = (bits >> 31) & (c != 0 ? 1u : 0u);
  return (sign << 7) | c;
}
template <class R>
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr std::uint32_t
natural_encode8(float x, const R& r) noexcept {
  return natural_code8(x, r.below(natural_threshold8(x)));
}
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr float
natural_decode8(std::uint32_t code) noexcept {
  const std::uint32_t c = code & 0x7fu;
  const std::uint32_t e = c == 0 ? 0u : c + natural8_exponent_offset;
  return detail::bits_float(((code >> 7) << 31) | (e << 23));
}
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr bool
natural_valid8(std::uint32_t code) noexcept {
  return static_cast<bool>(static_cast<unsigned>((code & 0x7fu) != 0u) |
                           static_cast<unsigned>(code == 0u)); // bitwise, as natural_valid9
}

} // namespace gradcomp::math
