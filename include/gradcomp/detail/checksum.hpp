// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bits.hpp"

#include <cstddef>
#include <cstdint>

/// @file
/// A fast 64-bit checksum of the wire message (not cryptographic): four independent
/// multiply-rotate lanes over 8-byte little-endian words, a byte tail, and a final avalanche.
/// It detects accidental corruption (bit flips, truncation inside a span); hostile messages are
/// caught by the decoder's structural validation, which never relies on it.

namespace gradcomp::detail {

inline constexpr std::uint64_t checksum_p1 = 0x9E3779B185EBCA87ull;
inline constexpr std::uint64_t checksum_p2 = 0xC2B2AE3D27D4EB4Full;

[[nodiscard]] constexpr std::uint64_t rotl64(std::uint64_t v, unsigned r) noexcept {
  return (v << r) | (v >> (64 - r));
}
[[nodiscard]] constexpr std::uint64_t avalanche64(std::uint64_t h) noexcept {
  h ^= h >> 33;
  h *= checksum_p2;
  h ^= h >> 29;
  h *= checksum_p1;
  h ^= h >> 32;
  return h;
}

/// Continues a checksum state over more bytes (state = 0 to start).
struct checksum_state {
  std::uint64_t lane[4] = {checksum_p1, checksum_p2, ~checksum_p1, ~checksum_p2};
  std::uint64_t length = 0;

  void update(const std::byte* p, std::size_t n) noexcept {
    // Callers feed whole regions; each region is hashed independently of alignment.
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
      for (unsigned l = 0; l < 4; ++l) {
        lane[l] = rotl64(lane[l] ^ load_le<std::uint64_t>(p + i + 8 * l), 29) * checksum_p1;
      }
    }
    std::uint64_t tail = 0;
    for (std::size_t j = 0; i + j < n; ++j) {
      tail |= static_cast<std::uint64_t>(p[i + j]) << (8 * (j % 8));
      if (j % 8 == 7 || i + j + 1 == n) {
        lane[0] = rotl64(lane[0] ^ tail, 31) * checksum_p2;
        tail = 0;
      }
    }
    length += n;
  }
  [[nodiscard]] std::uint64_t finish() const noexcept {
    std::uint64_t h = length * checksum_p1;
    for (unsigned l = 0; l < 4; ++l) {
      h = rotl64(h ^ avalanche64(lane[l]), 27) * checksum_p2;
    }
    return avalanche64(h);
  }
};

} // namespace gradcomp::detail
