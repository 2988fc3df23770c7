// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../core/float16.hpp"
#include "../../detail/bit_pack.hpp"
#include "../../detail/bits.hpp"
#include "../../math/rounding.hpp"
#include "../../random/philox_batch.hpp"
#include "../../random/stream_key.hpp"
#include "checksum_blocks.hpp"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

/// @file
/// The 64-code blocks the CPU's encode_codes and decode_codes primitives (backend/cpu/codes.hpp)
/// work in: a block's scales and random bytes, its codes, their packing and unpacking, and the
/// checksum blocks of the code streams a thread part writes or reads.

namespace gradcomp::detail {

/// The scale of a block whose elements (span-local base .. base+len-1) all share one: no scales
/// (0), or one group holding the whole block (always, for one scale per span).
inline bool uniform_block_scale(const float* scales, std::size_t group, std::size_t base,
                                std::size_t len, float& scale) noexcept {
  if (scales == nullptr) {
    scale = 0.0f;
    return true;
  }
  const std::size_t g = base / group;
  scale = scales[g];
  return base + len <= (g + 1) * group;
}

/// Per-element scales of a block: element j uses scales[(base + j) / group], written without a
/// division per element.
inline void block_scales(const float* scales, std::size_t group, std::size_t base, std::size_t len,
                         float* out) noexcept {
  std::size_t g = base / group;
  std::size_t next = (g + 1) * group;
  for (std::size_t j = 0; j < len; ++j) {
    if (base + j == next) {
      ++g;
      next += group;
    }
    out[j] = scales[g];
  }
}

/// Calls f with the block's scales as an accessor j -> float: one shared value (the common
/// case, which keeps the element loops free of a scale array) or one per element.
template <class F>
GRADCOMP_FORCEINLINE void with_block_scales(const float* scales, std::size_t group,
                                            std::size_t base, std::size_t len, float* buffer,
                                            F&& f) {
  float shared = 0.0f;
  if (uniform_block_scale(scales, group, base, len, shared)) {
    f([shared](std::size_t) { return shared; });
  } else {
    block_scales(scales, group, base, len, buffer);
    f([buffer](std::size_t j) { return buffer[j]; });
  }
}

/// The high random bytes a_i (math/rounding.hpp, random_stream::bits8) of consecutive elements,
/// generated 256 at a time (two groups of eight Philox blocks).
class high8_source {
public:
  explicit high8_source(const random_stream& rs) noexcept : rs_(rs) {}
  /// a_i for global elements g0 .. g0+len-1 (len <= 64), valid until the next call.
  const std::uint8_t* bytes(std::uint64_t g0, std::size_t len) noexcept {
    if (g0 < first_ || g0 + len > first_ + cached) {
      first_ = g0 & ~std::uint64_t{127};
      philox_blocks8(rs_, first_ >> 4, bytes_);
      philox_blocks8(rs_, (first_ >> 4) + 8, bytes_ + 128);
    }
    return reinterpret_cast<const std::uint8_t*>(bytes_) + (g0 - first_);
  }

private:
  static constexpr std::uint64_t cached = 256;
  random_stream rs_;
  std::uint64_t first_ = ~std::uint64_t{0} - 2 * cached;
  alignas(64) std::byte bytes_[cached] = {};
};

/// Calls f with the code width of a coder as a compile-time constant: coders with a fixed width
/// declare `static constexpr unsigned fixed_bits`; the others (QSGD) go through a switch.
template <class Coder, class F>
decltype(auto) with_coder_width(const Coder& coder, F&& f) {
  if constexpr (requires { Coder::fixed_bits; }) {
    return f(std::integral_constant<unsigned, Coder::fixed_bits>{});
  } else {
    return with_code_width(coder.bits(), std::forward<F>(f));
  }
}

/// The codes of one block of len <= 64 elements. Random coders decide each element by its high
/// random byte; the rare ties (probability <= 1/256 each) read the low 24 bits of the word
/// (math/rounding.hpp). One pass in 32-bit lanes (it vectorizes), then the ties.
template <class Coder, class ScaleAt>
GRADCOMP_FORCEINLINE void code_block(const Coder& coder, const float* xs, ScaleAt scale,
                                     std::size_t len, const std::uint8_t* random_high,
                                     const random_stream& low, std::uint64_t first,
                                     std::uint32_t* codes) {
  if constexpr (!Coder::uses_random) {
    for (std::size_t j = 0; j < len; ++j) {
      codes[j] = coder.code(xs[j], scale(j), 0u);
    }
  } else {
    alignas(64) std::uint32_t high8[codes_per_block];
    alignas(64) std::uint32_t t_low[codes_per_block];
    alignas(64) std::uint8_t tie[codes_per_block] = {}; // flags 0/1; stays 0 past len
    for (std::size_t j = 0; j < len; ++j) {
      high8[j] = random_high[j];
    }
    for (std::size_t j = 0; j < len; ++j) {
      const math::threshold_word t = coder.threshold(xs[j], scale(j));
      t_low[j] = t.low;
      tie[j] = high8[j] == t.high ? 1u : 0u;
      codes[j] = coder.code(xs[j], scale(j), high8[j] < t.high ? 1u : 0u);
    }
    for (std::size_t w = 0; w < codes_per_block / 8; ++w) { // eight flags per word
      std::uint64_t flags;
      std::memcpy(&flags, tie + 8 * w, 8);
      while (flags != 0) { // about one block in five has a tie
        const std::size_t j = 8 * w + static_cast<std::size_t>(std::countr_zero(flags)) / 8;
        flags &= flags - 1;
        const std::uint32_t b = low.bits32(first + j) & 0xffffffu;
        codes[j] = coder.code(xs[j], scale(j), b < t_low[j] ? 1u : 0u);
      }
    }
  }
}

/// Packs len <= 64 codes of width B into packed_bytes(len, B) bytes at dst.
template <unsigned B>
GRADCOMP_FORCEINLINE void store_block(std::uint32_t* codes, std::size_t len, std::byte* dst) {
  std::uint64_t words[B];
  if (len == codes_per_block) {
    if constexpr (byte_packable<B>) {
      pack_block_bytes<B>(codes, dst);
    } else if constexpr (octet_packable<B>) {
      pack_block_octets<B>(codes, dst);
    } else {
      pack_block<B>(codes, words);
      for (std::size_t w = 0; w < B; ++w) {
        store_le(dst + w * 8, words[w]);
      }
    }
    return;
  }
  std::fill(codes + len, codes + codes_per_block, 0u);
  pack_block<B>(codes, words);
  const std::size_t bytes = packed_bytes(len, B);
  for (std::size_t w = 0; w < B && w * 8 < bytes; ++w) {
    std::byte tmp[8];
    store_le(tmp, words[w]);
    std::memcpy(dst + w * 8, tmp, std::min<std::size_t>(8, bytes - w * 8));
  }
}

/// Unpacks len <= 64 codes of width B from packed_bytes(len, B) bytes at src (codes past len
/// read as zero); never reads past those bytes.
template <unsigned B>
GRADCOMP_FORCEINLINE void load_block(const std::byte* src, std::size_t len, std::uint32_t* codes) {
  if constexpr (byte_packable<B> && B >= 8) { // whole bytes: a plain widening copy
    if (len == codes_per_block) {
      unpack_block_bytes<B>(src, codes);
      return;
    }
  }
  std::uint64_t words[B];
  const std::size_t bytes = packed_bytes(len, B);
  for (std::size_t w = 0; w < B; ++w) {
    std::byte tmp[8] = {};
    if (w * 8 < bytes) {
      std::memcpy(tmp, src + w * 8, std::min<std::size_t>(8, bytes - w * 8));
    }
    words[w] = load_le<std::uint64_t>(tmp);
  }
  unpack_block<B>(words, codes);
}

/// Code blocks between two hashings of the checksum blocks a part has written or read (4096
/// elements: at most 16 KB of codes, still in cache).
inline constexpr std::size_t hash_every_blocks = 64;

/// The checksum blocks of the code streams (codes of M bits, and with SignPlane the sign bits)
/// of one part, code blocks [first_block, end), hashed as the part advances (hashing_cursor).
template <unsigned M, bool SignPlane, class Byte>
class code_streams_hash {
public:
  code_streams_hash(prehashed_blocks* hashed, Byte* codes, std::size_t n,
                    std::size_t first_block) noexcept
      : codes_(codes), n_(n), first_block_(first_block), codes_hash_(hashed, codes_at(first_block)),
        signs_hash_(SignPlane ? hashed : nullptr, signs_at(first_block)) {}

  /// Code blocks [first_block, end) are done: hashes what they fill, every hash_every_blocks.
  void done_to(std::size_t end) noexcept {
    if ((end - first_block_) % hash_every_blocks == 0) {
      codes_hash_.written_to(codes_at(end));
      signs_hash_.written_to(signs_at(end));
    }
  }
  /// The part ends at code block `end`; returns the digest sum of the blocks it hashed.
  std::uint64_t finish(std::size_t end) noexcept {
    return codes_hash_.finish(codes_at(end)) + signs_hash_.finish(signs_at(end));
  }

  /// Where code block b begins in the code stream and in the sign stream (clamped to its end).
  [[nodiscard]] Byte* codes_at(std::size_t b) const noexcept {
    return codes_ + std::min(b * (M * 8), packed_bytes(n_, M));
  }
  [[nodiscard]] Byte* signs_at(std::size_t b) const noexcept {
    if constexpr (SignPlane) {
      return codes_ + packed_bytes(n_, M) + std::min(b * 8, packed_bytes(n_, 1));
    } else {
      return codes_; // no sign stream: nothing past the codes is formed
    }
  }

private:
  Byte* codes_;
  std::size_t n_;
  std::size_t first_block_;
  hashing_cursor codes_hash_;
  hashing_cursor signs_hash_;
};

} // namespace gradcomp::detail
