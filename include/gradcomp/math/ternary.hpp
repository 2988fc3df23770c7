// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../detail/bits.hpp"
#include "rounding.hpp"

#include <cstdint>

/// @file
/// TernGrad's per-element math (Wen et al. 2017): Q(x)_i = s * sign(x_i) * Bernoulli(|x_i| / s).
/// Codes: 0 -> 0, 1 -> +s, 2 -> -s; 3 is invalid. Inputs above s (after clipping) count as s.
/// Split as threshold (the Bernoulli's T) and code (given the decision), so backends can decide
/// all elements of a block at once.

namespace gradcomp::math {

inline constexpr std::uint32_t ternary_zero = 0, ternary_plus = 1, ternary_minus = 2;

GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr threshold_word
ternary_threshold(float x, float scale) noexcept {
  const float a = detail::bits_float(detail::abs_bits(x));
  const float clipped = a < scale ? a : scale;
  // scale 0 means clipped 0: dividing by the smallest subnormal instead keeps p = 0 without a
  // branch, so the loop vectorizes; for scale > 0 the divisor is scale itself.
  const float divisor = scale > 0x1p-149f ? scale : 0x1p-149f;
  return probability_threshold(clipped / divisor);
}
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr std::uint32_t
ternary_code(float x, std::uint32_t up) noexcept {
  return up * (1u + (detail::float_bits(x) >> 31));
}
template <class R>
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr std::uint32_t
ternary_encode(float x, float scale, const R& r) noexcept {
  return ternary_code(x, r.below(ternary_threshold(x, scale)));
}
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr float ternary_decode(std::uint32_t code,
                                                                         float scale) noexcept {
  return code == ternary_plus ? scale : (code == ternary_minus ? -scale : 0.0f);
}

} // namespace gradcomp::math
