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

GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr std::uint16_t
stochastic_round_bf16(float x, std::uint32_t r) noexcept {
  const std::uint32_t bits = detail::float_bits(x);
  const std::uint32_t up = (r >> 16) < (bits & 0xffffu) ? 1u : 0u;
  std::uint32_t out = (bits >> 16) + up;
  if ((out & 0x7fffu) == 0x7f80u) { // carried into Inf: saturate at the largest finite bf16
    out -= 1u;
  }
  return static_cast<std::uint16_t>(out);
}

GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr std::uint16_t
stochastic_round_f16(float x, std::uint32_t r) noexcept {
  const std::uint32_t bits = detail::float_bits(x);
  const std::uint32_t sign = (bits >> 16) & 0x8000u;
  const std::uint32_t ax = bits & 0x7fffffffu;
  std::uint32_t h;
  if (ax >= 0x477fe000u) { // >= 65504: saturate
    h = 0x7bffu;
  } else if (ax >= 0x38800000u) { // normal fp16 range
    h = (ax >> 13) - (112u << 10);
    h += (r >> 19) < (ax & 0x1fffu) ? 1u : 0u;
  } else { // subnormal fp16 range: grid 2^-24
    const float t = detail::bits_float(ax) * 0x1p24f; // exact
    const auto lo = static_cast<std::uint32_t>(t);
    h = lo + bernoulli(t - static_cast<float>(lo), r);
  }
  return static_cast<std::uint16_t>(sign | h);
}

} // namespace gradcomp::math
