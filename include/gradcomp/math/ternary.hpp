// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../detail/bits.hpp"
#include "rounding.hpp"

#include <cstdint>

/// @file
/// TernGrad's per-element math (Wen et al. 2017): Q(x)_i = s * sign(x_i) * Bernoulli(|x_i| / s).
/// Codes: 0 -> 0, 1 -> +s, 2 -> -s; 3 is invalid. Inputs above s (after clipping) count as s.

namespace gradcomp::math {

inline constexpr std::uint32_t ternary_zero = 0, ternary_plus = 1, ternary_minus = 2;

GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr std::uint32_t
ternary_encode(float x, float scale, std::uint32_t r) noexcept {
  const float a = detail::bits_float(detail::abs_bits(x));
  const float clipped = a < scale ? a : scale;
  const float p = scale > 0.0f ? clipped / scale : 0.0f;
  const std::uint32_t keep = bernoulli(p, r);
  return keep * (1u + (detail::float_bits(x) >> 31));
}
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr float ternary_decode(std::uint32_t code,
                                                                        float scale) noexcept {
  return code == ternary_plus ? scale : (code == ternary_minus ? -scale : 0.0f);
}

} // namespace gradcomp::math
