// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../config.hpp"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__CUDA_ARCH__)
#define GRADCOMP_DETAIL_AVX512_FILTER 1
#include <immintrin.h>
#endif

/// @file
/// Stream compaction of a block held in cache: the positions (and keys) that pass a test, in
/// order. The selection primitives filter whole spans through these, one L1-sized chunk at a
/// time; with AVX-512 the key filter is a compare and two compress-stores per sixteen keys.

namespace gradcomp::detail {

/// Calls emit(j), in increasing j < len, for every j where hit(j) holds. The hits of sixteen
/// elements are computed as a byte vector first (a vector compare where hit() allows it) and
/// tested as two words, so the mostly empty groups of a selective filter cost no branch per
/// element.
template <class Hit, class Emit>
GRADCOMP_FORCEINLINE void append_where(std::size_t len, Hit&& hit, Emit&& emit) {
  std::size_t g = 0;
  for (; g + 16 <= len; g += 16) {
    alignas(16) std::uint8_t h[16];
    for (std::size_t j = 0; j < 16; ++j) {
      h[j] = hit(g + j) ? 1 : 0;
    }
    std::uint64_t w[2];
    std::memcpy(w, h, sizeof w);
    for (std::size_t half = 0; half < 2; ++half) {
      // one bit per hit byte (bit 8b for byte b, in memory order on little and big endian)
      std::uint64_t bits = std::endian::native == std::endian::little ? w[half] : 0;
      if constexpr (std::endian::native != std::endian::little) {
        for (std::size_t b = 0; b < 8; ++b) {
          bits |= std::uint64_t{h[8 * half + b]} << (8 * b);
        }
      }
      while (bits != 0) {
        emit(g + 8 * half + static_cast<std::size_t>(std::countr_zero(bits)) / 8);
        bits &= bits - 1;
      }
    }
  }
  for (; g < len; ++g) {
    if (hit(g)) {
      emit(g);
    }
  }
}

/// The keys key(base + j) >= t for j in [0, len), in order, to out_keys, and their positions j
/// to out_pos; returns how many and raises `top` to the largest key seen. Keys are computed
/// sixteen at a time into one vector (with AVX-512 and 32-bit keys: a compare and two
/// compress-stores per vector). Both outputs need room for len entries (the vector path stores
/// whole vectors, but never past the len-th entry: hits <= j before group j).
template <class KeyFn, class K>
GRADCOMP_FORCEINLINE std::size_t keys_at_least(const KeyFn& key, std::size_t base, std::size_t len,
                                               K t, K* out_keys, std::uint32_t* out_pos, K& top) {
  std::size_t hits = 0;
  std::size_t j = 0;
#if defined(GRADCOMP_DETAIL_AVX512_FILTER)
  if constexpr (std::is_same_v<K, std::uint32_t>) {
    const __m512i threshold = _mm512_set1_epi32(static_cast<int>(t));
    const __m512i step = _mm512_set1_epi32(16);
    __m512i pos = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    // the running max in a vector-extension type (GCC 12's _mm512_max_epu32 and
    // _mm512_reduce_max_epu32 trip -Wmaybe-uninitialized on their undefined operand)
    using u32x16 = std::uint32_t __attribute__((vector_size(64)));
    u32x16 max = u32x16{} + static_cast<std::uint32_t>(top);
    for (; j + 16 <= len; j += 16) {
      alignas(64) std::uint32_t k16[16];
      for (std::size_t q = 0; q < 16; ++q) {
        k16[q] = key(base + j + q);
      }
      const __m512i v = _mm512_load_si512(k16);
      const auto lanes = (u32x16)v; // a vector cast: the same 64 bytes
      max = lanes > max ? lanes : max;
      const __mmask16 m = _mm512_cmpge_epu32_mask(v, threshold);
      // no branch (a filter keeping ~1 % hits about one vector in six: a branch on it would
      // mispredict); compress in a register, then a full store (a compress to memory is
      // microcoded on some cores): the lanes past the hits are overwritten by the next store
      _mm512_storeu_si512(out_keys + hits, _mm512_maskz_compress_epi32(m, v));
      _mm512_storeu_si512(out_pos + hits, _mm512_maskz_compress_epi32(m, pos));
      hits += static_cast<std::size_t>(std::popcount(static_cast<unsigned>(m)));
      pos = _mm512_add_epi32(pos, step);
    }
    for (int q = 0; q < 16; ++q) {
      top = max[q] > top ? max[q] : top;
    }
  }
#endif
  for (; j < len; j += 16) {
    const std::size_t group = len - j < 16 ? len - j : 16;
    K k16[16];
    for (std::size_t q = 0; q < group; ++q) {
      k16[q] = key(base + j + q);
      top = k16[q] > top ? k16[q] : top;
    }
    append_where(
        group, [&](std::size_t q) { return k16[q] >= t; },
        [&](std::size_t q) {
          out_keys[hits] = k16[q];
          out_pos[hits++] = static_cast<std::uint32_t>(j + q);
        });
  }
  return hits;
}

} // namespace gradcomp::detail
