// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../detail/bits.hpp"
#include "rounding.hpp"

#include <cstdint>

/// @file
/// QSGD's per-element math (Alistarh et al. 2017): with r = (|x|/||x||) s, l = floor(r), the
/// level is l + Bernoulli(r - l) and Q(x)_i = ||x|| sign(x_i) (level / s). A code is the level in
/// the low `level_bits` bits and the sign in the bit above; a zero level always has a zero sign
/// bit.

namespace gradcomp::math {

GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr float qsgd_ratio(float x, float norm,
                                                                     std::uint32_t s) noexcept {
  const float a = detail::bits_float(detail::abs_bits(x));
  // a norm of 0 means every a is 0: the smallest subnormal as divisor keeps the ratio 0 without
  // a branch (the loop vectorizes); for norm > 0 the divisor is the norm itself.
  const float divisor = norm > 0x1p-149f ? norm : 0x1p-149f;
  return (a / divisor) * static_cast<float>(s);
}
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr threshold_word
qsgd_threshold(float x, float norm, std::uint32_t s) noexcept {
  const float ratio = qsgd_ratio(x, norm, s);
  return probability_threshold(ratio - static_cast<float>(static_cast<std::uint32_t>(ratio)));
}
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr std::uint32_t
qsgd_code(float x, float norm, std::uint32_t s, unsigned level_bits, std::uint32_t up) noexcept {
  std::uint32_t level = static_cast<std::uint32_t>(qsgd_ratio(x, norm, s)) + up;
  level = level < s ? level : s;
  const std::uint32_t negative = (detail::float_bits(x) >> 31) & (level != 0 ? 1u : 0u);
  return (negative << level_bits) | level;
}
template <class R>
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr std::uint32_t
qsgd_encode(float x, float norm, std::uint32_t s, unsigned level_bits, const R& r) noexcept {
  return qsgd_code(x, norm, s, level_bits, r.below(qsgd_threshold(x, norm, s)));
}
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr float
qsgd_decode(std::uint32_t code, float norm, std::uint32_t s, unsigned level_bits) noexcept {
  const std::uint32_t level = code & ((1u << level_bits) - 1u);
  // norm * (level / s): level / s <= 1, so the product never exceeds the norm (norm * level
  // first overflowed to Inf for norms above FLT_MAX / s; found by fuzz_roundtrip)
  const float mag = norm * (static_cast<float>(level) / static_cast<float>(s));
  // the sign bit flipped by the code's sign (== -mag; bit operations keep the loop vectorizable)
  const std::uint32_t negative = (code >> level_bits) != 0 ? 1u : 0u;
  return detail::bits_float(detail::float_bits(mag) ^ (negative << 31));
}
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr bool
qsgd_valid(std::uint32_t code, std::uint32_t s, unsigned level_bits) noexcept {
  const std::uint32_t level = code & ((1u << level_bits) - 1u);
  // bitwise, not short-circuit: no branch in validation loops
  return static_cast<bool>(
      static_cast<unsigned>(level <= s) &
      (static_cast<unsigned>(level != 0) | static_cast<unsigned>((code >> level_bits) == 0)));
}
/// ceil(log2(s + 1)): bits needed for the levels 0..s.
GRADCOMP_HOST_DEVICE constexpr unsigned qsgd_level_bits(std::uint32_t s) noexcept {
  unsigned b = 0;
  while (b < 32 && (std::uint64_t{1} << b) < static_cast<std::uint64_t>(s) + 1) {
    ++b;
  }
  return b;
}

} // namespace gradcomp::math
