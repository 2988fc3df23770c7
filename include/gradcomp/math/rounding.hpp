// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../config.hpp"

#include <cstdint>

/// @file
/// Bernoulli decisions from integers (SPECS.md §2.2): "round up iff r < T" with r a uniform
/// 32-bit word and T = floor(p * 2^32), so P(up) = T / 2^32 differs from p by less than 2^-32
/// and the decision is bit-identical wherever p is computed with the same IEEE operations.

namespace gradcomp::math {

/// floor(p * 2^32) for p in [0, 1], exact (p * 2^32 is exact in double).
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr std::uint64_t
probability_threshold(float p) noexcept {
  return static_cast<std::uint64_t>(static_cast<double>(p) * 4294967296.0);
}
/// 1 with probability p (to within 2^-32), 0 otherwise, given 32 uniform bits r.
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr std::uint32_t bernoulli(float p,
                                                                           std::uint32_t r) noexcept {
  return static_cast<std::uint64_t>(r) < probability_threshold(p) ? 1u : 0u;
}

} // namespace gradcomp::math
