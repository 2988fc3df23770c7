// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../config.hpp"
#include "bits.hpp"

#include <cstddef>
#include <cstdint>

/// @file
/// A fast 64-bit checksum of the wire message (not cryptographic), built to run in parallel: the
/// message is cut into blocks of checksum_block_bytes; each block is hashed on its own (four
/// independent multiply-rotate lanes over 8-byte little-endian words, a byte tail, an avalanche),
/// mixed with its block index, and the block digests are added modulo 2^64, an order-free sum a
/// GPU reduces in any order. It detects accidental corruption (bit flips, truncation, swapped
/// blocks); hostile messages are caught by the decoder's structural validation, which never
/// relies on it. Every function here is shared by the CPU and CUDA backends.

namespace gradcomp::detail {

inline constexpr std::uint64_t checksum_p1 = 0x9E3779B185EBCA87ull;
inline constexpr std::uint64_t checksum_p2 = 0xC2B2AE3D27D4EB4Full;
inline constexpr std::size_t checksum_block_bytes = 1024;

[[nodiscard]] GRADCOMP_HOST_DEVICE constexpr std::uint64_t rotl64(std::uint64_t v,
                                                                  unsigned r) noexcept {
  return (v << r) | (v >> (64 - r));
}
[[nodiscard]] GRADCOMP_HOST_DEVICE constexpr std::uint64_t avalanche64(std::uint64_t h) noexcept {
  h ^= h >> 33;
  h *= checksum_p2;
  h ^= h >> 29;
  h *= checksum_p1;
  h ^= h >> 32;
  return h;
}

/// The four lanes of one block's hash.
struct checksum_lanes {
  std::uint64_t lane[4] = {checksum_p1, checksum_p2, ~checksum_p1, ~checksum_p2};

  /// One 32-byte row: words w0..w3 (little-endian loads).
  GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr void row(const std::uint64_t* w) noexcept {
    for (unsigned l = 0; l < 4; ++l) {
      lane[l] = rotl64(lane[l] ^ w[l], 29) * checksum_p1;
    }
  }
  /// A tail word of up to 8 bytes (after the whole rows).
  GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr void tail(std::uint64_t w) noexcept {
    lane[0] = rotl64(lane[0] ^ w, 31) * checksum_p2;
  }
  /// The digest of block `index` of `length` bytes, as it enters the sum.
  [[nodiscard]] GRADCOMP_HOST_DEVICE constexpr std::uint64_t
  digest(std::uint64_t index, std::uint64_t length) const noexcept {
    std::uint64_t h = length * checksum_p1;
    for (unsigned l = 0; l < 4; ++l) {
      h = rotl64(h ^ avalanche64(lane[l]), 27) * checksum_p2;
    }
    return avalanche64(h ^ (index * checksum_p2 + checksum_p1));
  }
};

/// The final checksum from the sum of the block digests and the message length.
[[nodiscard]] GRADCOMP_HOST_DEVICE constexpr std::uint64_t
checksum_finish(std::uint64_t digest_sum, std::uint64_t length) noexcept {
  return avalanche64(digest_sum ^ (length * checksum_p2));
}

/// The little-endian word of bytes [i, i+8) of a block of n bytes, zero past its end.
[[nodiscard]] inline std::uint64_t checksum_word(const std::byte* p, std::size_t i,
                                                 std::size_t n) noexcept {
  std::uint64_t w = 0;
  for (std::size_t j = 0; j < 8 && i + j < n; ++j) {
    w |= static_cast<std::uint64_t>(p[i + j]) << (8 * j);
  }
  return w;
}

/// The digest of one block of n <= checksum_block_bytes bytes (host).
[[nodiscard]] inline std::uint64_t checksum_block(const std::byte* p, std::size_t n,
                                                  std::uint64_t index) noexcept {
  checksum_lanes h;
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const std::uint64_t w[4] = {load_le<std::uint64_t>(p + i), load_le<std::uint64_t>(p + i + 8),
                                load_le<std::uint64_t>(p + i + 16),
                                load_le<std::uint64_t>(p + i + 24)};
    h.row(w);
  }
  for (; i < n; i += 8) {
    h.tail(checksum_word(p, i, n));
  }
  return h.digest(index, n);
}

/// The sum of the digests of blocks [first, end) of a buffer p of `length` bytes (block b starts
/// at byte b * checksum_block_bytes). One block at a time: interleaving blocks was measured
/// slower (their lanes no longer fit the registers).
[[nodiscard]] inline std::uint64_t checksum_blocks(const std::byte* p, std::size_t length,
                                                   std::uint64_t first,
                                                   std::uint64_t end) noexcept {
  std::uint64_t sum = 0;
  for (std::uint64_t b = first; b < end; ++b) {
    const std::size_t begin = b * checksum_block_bytes;
    const std::size_t n =
        length - begin < checksum_block_bytes ? length - begin : checksum_block_bytes;
    sum += checksum_block(p + begin, n, b);
  }
  return sum;
}

} // namespace gradcomp::detail
