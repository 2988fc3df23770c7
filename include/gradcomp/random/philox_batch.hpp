// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../detail/bits.hpp"
#include "stream_key.hpp"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

/// @file
/// Philox words for many consecutive counters at once, on the host: eight blocks per call in
/// SIMD lanes where the compiler offers vector extensions. The words are those of
/// random_stream::block(), so batched and one-at-a-time callers (and the GPU) agree.

namespace gradcomp::detail {

/// Eight consecutive Philox4x32-10 blocks (counters first .. first+7) written as 128 bytes in
/// the lane-major order of random_stream::bits8: lane l of block q at bytes 32l + 4q,
/// little-endian. Uses 8-lane vectors where the compiler offers them (GCC/Clang vector extensions:
/// one vpmuludq per round per multiplier with AVX-512), else the scalar generator.
inline void philox_blocks8(const random_stream& rs, std::uint64_t first, std::byte* out) noexcept {
#if defined(__GNUC__) && !defined(__CUDA_ARCH__)
  using u64x8 = std::uint64_t __attribute__((vector_size(64)));
  constexpr u64x8 lane = {0, 1, 2, 3, 4, 5, 6, 7};
  constexpr std::uint64_t low32 = 0xffffffffu;
  const u64x8 counter = lane + first;
  u64x8 c0 = counter & low32, c1 = counter >> 32;
  u64x8 c2 = u64x8{} + rs.stream_lo, c3 = u64x8{} + rs.stream_hi;
  std::uint64_t k0 = rs.key[0], k1 = rs.key[1];
  for (int round = 0; round < 10; ++round) {
    const u64x8 p0 = c0 * std::uint64_t{detail::philox_m0};
    const u64x8 p1 = c2 * std::uint64_t{detail::philox_m1};
    c0 = (p1 >> 32) ^ c1 ^ k0;
    c1 = p1 & low32;
    c2 = (p0 >> 32) ^ c3 ^ k1;
    c3 = p0 & low32;
    k0 = (k0 + detail::philox_w0) & low32;
    k1 = (k1 + detail::philox_w1) & low32;
  }
  // lane-major (random_stream::bits8): lane l of blocks 0..7 fills bytes 32l .. 32l+31
  using u32x8 = std::uint32_t __attribute__((vector_size(32)));
  const u32x8 lanes[4] = {__builtin_convertvector(c0, u32x8), __builtin_convertvector(c1, u32x8),
                          __builtin_convertvector(c2, u32x8), __builtin_convertvector(c3, u32x8)};
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(out, lanes, sizeof lanes);
  } else {
    for (int l = 0; l < 4; ++l) {
      for (int q = 0; q < 8; ++q) {
        store_le<std::uint32_t>(out + 32 * l + 4 * q, lanes[l][q]);
      }
    }
  }
#else
  for (std::uint64_t q = 0; q < 8; ++q) {
    const philox_counter v = rs.block(first + q);
    for (std::size_t l = 0; l < 4; ++l) {
      store_le<std::uint32_t>(out + 32 * l + 4 * q, v[l]);
    }
  }
#endif
}

/// bits64(g) for the global elements g = first .. first+len-1 (random_stream::bits64: element
/// g reads lanes 2(g%2), 2(g%2)+1 of block g/2), sixteen elements per philox_blocks8() call.
inline void bits64_words(const random_stream& rs, std::uint64_t first, std::size_t len,
                         std::uint64_t* out) noexcept {
  alignas(64) std::byte raw[128];
  const std::uint64_t end = first + len;
  for (std::uint64_t group = first & ~std::uint64_t{15}; group < end; group += 16) {
    philox_blocks8(rs, group >> 1, raw);
    const std::uint64_t lo = group < first ? first : group;
    const std::uint64_t hi = group + 16 < end ? group + 16 : end;
    for (std::uint64_t g = lo; g < hi; ++g) {
      const unsigned q = static_cast<unsigned>((g >> 1) & 7u);
      const unsigned lane = static_cast<unsigned>(g & 1u) * 2u;
      const auto high = load_le<std::uint32_t>(raw + 32 * lane + 4 * q);
      const auto low = load_le<std::uint32_t>(raw + 32 * (lane + 1) + 4 * q);
      out[g - first] = (static_cast<std::uint64_t>(high) << 32) | low;
    }
  }
}

} // namespace gradcomp::detail
