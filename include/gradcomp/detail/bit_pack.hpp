// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../config.hpp"
#include "bits.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

/// @file
/// Fixed-width code streams: code j of width B occupies bits [jB, jB+B) of a little-endian bit
/// stream, least significant bit first. Blocks of 64 codes fill exactly B 64-bit words, so
/// packing and unpacking run on whole words with compile-time shifts. The stream of n codes is
/// ceil(nB/8) bytes; unused bits of the last byte are zero (decoders check it).

namespace gradcomp::detail {

inline constexpr std::size_t codes_per_block = 64;

/// How a span's codes of `bits` bits lie in its payload. Without a sign plane: one stream of
/// `bits`-bit codes. With one (codes whose top bit is a sign: QSGD, natural 9-bit): a stream of
/// the (bits - 1)-bit magnitudes, then a stream of the n sign bits; each stream is LSB-first and
/// zero-padded to a byte. Splitting keeps both streams at widths that pack as whole bytes (8 + 1,
/// 4 + 1 ...), and the sign plane is a plain bitmap.
struct code_layout {
  unsigned bits = 1;
  bool sign_plane = false;
  [[nodiscard]] constexpr unsigned magnitude_bits() const noexcept {
    return sign_plane ? bits - 1 : bits;
  }
};

[[nodiscard]] constexpr std::size_t packed_bytes(std::size_t n, unsigned bits) noexcept {
  // n * bits / 8 rounded up, without overflowing for huge n
  return (n / 8) * bits + ceil_div((n % 8) * bits, 8);
}

/// Bytes of n codes in a layout: the magnitude stream, plus the sign stream if there is one.
[[nodiscard]] constexpr std::size_t packed_bytes(std::size_t n, code_layout layout) noexcept {
  return packed_bytes(n, layout.magnitude_bits()) + (layout.sign_plane ? packed_bytes(n, 1) : 0);
}

/// Whether a coder's codes carry their sign in the top bit and travel as two planes
/// (detail/bit_pack.hpp code_layout).
template <class Coder>
inline constexpr bool has_sign_plane = requires {
  requires Coder::sign_plane;
};

template <class Coder>
[[nodiscard]] code_layout coder_layout(const Coder& coder) noexcept {
  return {coder.bits(), has_sign_plane<Coder>};
}

/// Widths that divide a byte or are whole bytes pack byte by byte: a form compilers vectorize.
template <unsigned B>
inline constexpr bool byte_packable = B == 1 || B == 2 || B == 4 || B == 8 || B == 16 || B == 32;

/// 64 codes of width B (byte_packable) -> 8B bytes, little-endian bit order.
template <unsigned B>
GRADCOMP_FORCEINLINE void pack_block_bytes(const std::uint32_t* codes, std::byte* out) noexcept {
  // measured (GCC 12, AVX-512): bits gather fastest into 32-bit words, 2- and 4-bit codes into
  // bytes
  if constexpr (B == 1) {
    for (unsigned k = 0; k < 2; ++k) {
      std::uint32_t v = 0;
      for (unsigned t = 0; t < 32; ++t) {
        v |= codes[32 * k + t] << t;
      }
      store_le<std::uint32_t>(out + 4 * k, v);
    }
  } else if constexpr (B < 8) {
    constexpr unsigned per_byte = 8 / B;
    for (unsigned k = 0; k < 8 * B; ++k) {
      std::uint32_t v = 0;
      for (unsigned t = 0; t < per_byte; ++t) {
        v |= codes[k * per_byte + t] << (t * B);
      }
      out[k] = static_cast<std::byte>(v);
    }
  } else {
    for (unsigned j = 0; j < 64; ++j) {
      for (unsigned b = 0; b < B / 8; ++b) {
        out[j * (B / 8) + b] = static_cast<std::byte>(codes[j] >> (8 * b));
      }
    }
  }
}

/// Widths up to 16 that are not byte_packable pack as eight groups of eight codes: a group is
/// 8B bits = exactly B bytes, built by merging neighbours (pairs, quads, octets) with
/// compile-time shifts in whole arrays (a form compilers vectorize), then stored in order.
template <unsigned B>
inline constexpr bool octet_packable = B <= 16 && !byte_packable<B>;

/// 64 codes of width B (octet_packable) -> 8B bytes, little-endian bit order.
template <unsigned B>
GRADCOMP_FORCEINLINE void pack_block_octets(const std::uint32_t* codes, std::byte* out) noexcept {
  static_assert(octet_packable<B>);
  std::uint64_t low[8] = {}, high[8] = {}; // group k: bits [0, 64) and [64, 8B)
  for (unsigned t = 0; t < 8; ++t) {       // code t of every group: one shift for all k
    const unsigned shift = t * B;          // < 64 for B <= 9; else split below
    for (unsigned k = 0; k < 8; ++k) {
      const std::uint64_t c = codes[8 * k + t];
      if (shift < 64) {
        low[k] |= c << shift;
        high[k] |= (c >> 1) >> (63 - shift); // the bits past 64 (none when shift is 0)
      } else {
        high[k] |= c << (shift - 64);
      }
    }
  }
  // group k fills bytes [kB, kB + B), in order: each whole-word store's zero tail lies in the
  // next group's bytes and is overwritten; stores that would pass the block's end go through tmp
  for (unsigned k = 0; k < 8; ++k) {
    std::byte* dst = out + k * B;
    const unsigned room = 8 * B - k * B; // bytes from dst to the block's end
    if (room >= 16 || (B <= 8 && room >= 8)) {
      store_le(dst, low[k]);
      if constexpr (B > 8) {
        store_le(dst + 8, high[k]);
      }
    } else {
      std::byte tmp[16];
      store_le(tmp, low[k]);
      store_le(tmp + 8, high[k]);
      std::memcpy(dst, tmp, B);
    }
  }
}

template <unsigned B>
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE void pack_block(const std::uint32_t* codes,
                                                          std::uint64_t* words) noexcept {
  static_assert(B >= 1 && B <= 32);
  GRADCOMP_UNROLL(32)
  for (unsigned w = 0; w < B; ++w) {
    words[w] = 0;
  }
  GRADCOMP_UNROLL(64)
  for (unsigned j = 0; j < 64; ++j) {
    const unsigned bit = j * B;
    const unsigned w = bit / 64, sh = bit % 64;
    words[w] |= static_cast<std::uint64_t>(codes[j]) << sh;
    if (sh + B > 64) {
      words[w + 1] |= static_cast<std::uint64_t>(codes[j]) >> (64 - sh);
    }
  }
}

/// 8B bytes -> 64 codes of width B, B a multiple of 8: the inverse of pack_block_bytes.
template <unsigned B>
GRADCOMP_FORCEINLINE void unpack_block_bytes(const std::byte* in, std::uint32_t* codes) noexcept {
  static_assert(byte_packable<B> && B >= 8);
  for (unsigned j = 0; j < 64; ++j) {
    std::uint32_t v = 0;
    for (unsigned b = 0; b < B / 8; ++b) {
      v |= static_cast<std::uint32_t>(in[j * (B / 8) + b]) << (8 * b);
    }
    codes[j] = v;
  }
}

template <unsigned B>
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE void unpack_block(const std::uint64_t* words,
                                                            std::uint32_t* codes) noexcept {
  static_assert(B >= 1 && B <= 32);
  constexpr std::uint64_t mask = (std::uint64_t{1} << B) - 1;
  GRADCOMP_UNROLL(64)
  for (unsigned j = 0; j < 64; ++j) {
    const unsigned bit = j * B;
    const unsigned w = bit / 64, sh = bit % 64;
    std::uint64_t v = words[w] >> sh;
    if (sh + B > 64) {
      v |= words[w + 1] << (64 - sh);
    }
    codes[j] = static_cast<std::uint32_t>(v & mask);
  }
}

/// Calls f(std::integral_constant<unsigned, B>{}) for the runtime width `bits` in [1, 32]
/// (validated upstream; anything larger is treated as 32).
template <unsigned B = 1, class F>
decltype(auto) with_code_width(unsigned bits, F&& f) {
  if constexpr (B == 32) {
    return f(std::integral_constant<unsigned, 32>{});
  } else {
    if (bits == B) {
      return f(std::integral_constant<unsigned, B>{});
    }
    return with_code_width<B + 1>(bits, std::forward<F>(f));
  }
}

} // namespace gradcomp::detail
