// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../core/float16.hpp"
#include "../detail/bits.hpp"
#include "rounding.hpp"

#include <cstdint>

/// @file
/// Stochastic rounding of fp32 to the bf16 and fp16 grids: round away from the truncated value
/// with probability equal to the discarded fraction of an ulp, so E[SR(x)] = x. bf16: P(up) =
/// (low 16 bits)/2^16 exactly. fp16: P(up) = (low 13 bits)/2^13 exactly in the normal range and
/// frac(|x| 2^24) to within 2^-32 in the subnormal range. Values beyond the largest finite target
/// value saturate to it (biased there, never Inf).

namespace gradcomp::math {

GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr threshold_word
sr_bf16_threshold(float x) noexcept {
  return threshold_word::of_u32((detail::float_bits(x) & 0xffffu) << 16);
}
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr std::uint16_t
sr_bf16_code(float x, std::uint32_t up) noexcept {
  std::uint32_t out = (detail::float_bits(x) >> 16) + up;
  if ((out & 0x7fffu) == 0x7f80u) { // carried into Inf: saturate at the largest finite bf16
    out -= 1u;
  }
  return static_cast<std::uint16_t>(out);
}

inline constexpr std::uint32_t f16_saturation_bits = 0x477fe000u; // 65504.0f
inline constexpr std::uint32_t f16_normal_bits = 0x38800000u;     // 2^-14

GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr threshold_word
sr_f16_threshold(float x) noexcept {
  const std::uint32_t ax = detail::float_bits(x) & 0x7fffffffu;
  if (ax >= f16_saturation_bits) {
    return {};
  }
  if (ax >= f16_normal_bits) {
    return threshold_word::of_u32((ax & 0x1fffu) << 19);
  }
  const float t = detail::bits_float(ax) * 0x1p24f; // subnormal fp16 grid 2^-24: exact
  return probability_threshold(t - static_cast<float>(static_cast<std::uint32_t>(t)));
}
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr std::uint16_t
sr_f16_code(float x, std::uint32_t up) noexcept {
  const std::uint32_t bits = detail::float_bits(x);
  const std::uint32_t ax = bits & 0x7fffffffu;
  std::uint32_t h;
  if (ax >= f16_saturation_bits) {
    h = 0x7bffu;
  } else if (ax >= f16_normal_bits) {
    h = (ax >> 13) - (112u << 10) + up;
  } else {
    h = static_cast<std::uint32_t>(detail::bits_float(ax) * 0x1p24f) + up;
  }
  return static_cast<std::uint16_t>(((bits >> 16) & 0x8000u) | h);
}
template <class R>
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr std::uint16_t
stochastic_round_bf16(float x, const R& r) noexcept {
  return sr_bf16_code(x, r.below(sr_bf16_threshold(x)));
}
template <class R>
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr std::uint16_t
stochastic_round_f16(float x, const R& r) noexcept {
  return sr_f16_code(x, r.below(sr_f16_threshold(x)));
}

} // namespace gradcomp::math
