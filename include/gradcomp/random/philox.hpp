// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../config.hpp"

#include <array>
#include <cstddef>
#include <cstdint>

/// @file
/// Philox4x32-10 (Salmon et al., SC'11), the counter-based generator behind every random decision
/// in gradcomp. A pure function of (counter, key): identical on host and device, independent of
/// threads, launch geometry and chunking. Checked against the published known-answer vectors.

namespace gradcomp {

using philox_counter = std::array<std::uint32_t, 4>;
using philox_key = std::array<std::uint32_t, 2>;

namespace detail {
inline constexpr std::uint32_t philox_m0 = 0xD2511F53u;
inline constexpr std::uint32_t philox_m1 = 0xCD9E8D57u;
inline constexpr std::uint32_t philox_w0 = 0x9E3779B9u;
inline constexpr std::uint32_t philox_w1 = 0xBB67AE85u;

GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr void
philox_round(std::uint32_t& c0, std::uint32_t& c1, std::uint32_t& c2, std::uint32_t& c3,
             std::uint32_t k0, std::uint32_t k1) noexcept {
  const std::uint64_t p0 = static_cast<std::uint64_t>(philox_m0) * c0;
  const std::uint64_t p1 = static_cast<std::uint64_t>(philox_m1) * c2;
  const auto hi0 = static_cast<std::uint32_t>(p0 >> 32);
  const auto lo0 = static_cast<std::uint32_t>(p0);
  const auto hi1 = static_cast<std::uint32_t>(p1 >> 32);
  const auto lo1 = static_cast<std::uint32_t>(p1);
  c0 = hi1 ^ c1 ^ k0;
  c1 = lo1;
  c2 = hi0 ^ c3 ^ k1;
  c3 = lo0;
}
} // namespace detail

/// One Philox4x32-10 block: four 32-bit random words for counter `ctr` under key `key`.
GRADCOMP_HOST_DEVICE constexpr philox_counter philox4x32_10(philox_counter ctr,
                                                            philox_key key) noexcept {
  std::uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  std::uint32_t k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; ++round) {
    detail::philox_round(c0, c1, c2, c3, k0, k1);
    k0 += detail::philox_w0;
    k1 += detail::philox_w1;
  }
  return {c0, c1, c2, c3};
}

} // namespace gradcomp
