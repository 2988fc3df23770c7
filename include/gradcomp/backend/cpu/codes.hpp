// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../core/float16.hpp"
#include "../../detail/bit_pack.hpp"
#include "../../detail/bits.hpp"
#include "../../detail/dispatch.hpp"
#include "../../detail/rounding_barrier.hpp"
#include "../../math/rounding.hpp"
#include "../../random/philox_batch.hpp"
#include "../../random/stream_key.hpp"
#include "checksum_blocks.hpp"
#include "code_tables.hpp"
#include "parallel.hpp"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

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

/// Code blocks of 64 elements per part when a call uses several threads (2^15 elements).
inline constexpr std::size_t parallel_min_blocks = 512;

/// Code blocks between two hashings of the checksum blocks an encode has written (4096 elements:
/// at most 16 KB of codes, still in cache).
inline constexpr std::size_t hash_every_blocks = 64;

/// Quantize n elements with a coder and pack the codes (detail/bit_pack.hpp) into out. Every
/// 64-element block has a fixed place in the output, so threads take contiguous block ranges.
/// With `hashed` (a message begun there), each thread also hashes the checksum blocks wholly
/// inside the bytes it wrote as it goes (backend/cpu/checksum_blocks.hpp); returns their digest
/// sum (0 without).
template <>
struct backend_impl<cpu_tag, encode_codes> {
  template <class T, class Coder>
  static std::uint64_t run(const cpu_policy& exec, const T* x, std::size_t n,
                           std::uint64_t global_begin, const float* scales, std::size_t group,
                           const random_stream& rs, const Coder& coder, std::byte* out,
                           prehashed_blocks* hashed = nullptr) {
    return with_coder_width(coder, [&](auto width) {
      constexpr unsigned B = decltype(width)::value;
      return parallel_reduce(
          exec, ceil_div(n, codes_per_block), parallel_min_blocks, std::uint64_t{0},
          [&](std::size_t first_block, std::size_t end_block) {
            return blocks<B>(x, n, first_block, end_block, global_begin, scales, group, rs, coder,
                             out, hashed);
          },
          [](std::uint64_t a, std::uint64_t b) { return a + b; });
    });
  }

private:
  template <unsigned B, class T, class Coder>
  static std::uint64_t blocks(const T* x, std::size_t n, std::size_t first_block,
                              std::size_t end_block, std::uint64_t global_begin,
                              const float* scales, std::size_t group, const random_stream& rs,
                              const Coder& coder, std::byte* out, prehashed_blocks* hashed) {
    alignas(64) float xf[codes_per_block];
    alignas(64) float sc[codes_per_block];
    alignas(64) std::uint32_t codes[codes_per_block];
    const random_stream low = rs.with_purpose(random_purpose::rounding_low);
    high8_source high(rs);
    constexpr bool sign_plane = has_sign_plane<Coder> && B >= 2;
    constexpr unsigned M = sign_plane ? B - 1 : B; // bits per code in the first stream
    std::byte* const signs_out = out + packed_bytes(n, M);
    // the end of the bytes blocks [first_block, b) fill in each stream
    auto codes_end = [&](std::size_t b) { return out + std::min(b * (M * 8), packed_bytes(n, M)); };
    auto signs_end = [&](std::size_t b) { return signs_out + std::min(b * 8, packed_bytes(n, 1)); };
    hashing_writer codes_hash(hashed, codes_end(first_block));
    hashing_writer signs_hash(sign_plane ? hashed : nullptr, signs_end(first_block));
    for (std::size_t block = first_block; block < end_block; ++block) {
      const std::size_t base = block * codes_per_block;
      const std::size_t len = std::min(codes_per_block, n - base);
      const float* xs = xf;
      if constexpr (std::is_same_v<T, float>) {
        xs = x + base;
      } else {
        for (std::size_t j = 0; j < len; ++j) {
          xf[j] = to_float(x[base + j]);
        }
      }
      const std::uint64_t first = global_begin + base;
      const std::uint8_t* random_high = nullptr;
      if constexpr (Coder::uses_random) {
        random_high = high.bytes(first, len);
      }
      with_block_scales(scales, group, base, len, sc, [&](auto scale) {
        if (len == codes_per_block) { // a constant trip count: vectorized at -O2 as well
          code_block(coder, xs, scale, codes_per_block, random_high, low, first, codes);
        } else {
          code_block(coder, xs, scale, len, random_high, low, first, codes);
        }
      });
      if constexpr (sign_plane) {
        alignas(64) std::uint32_t signs[codes_per_block];
        for (std::size_t j = 0; j < len; ++j) {
          signs[j] = codes[j] >> M;
          codes[j] &= (1u << M) - 1u;
        }
        store_block<M>(codes, len, out + block * (M * 8));
        store_block<1>(signs, len, signs_out + block * 8);
      } else {
        store_block<B>(codes, len, out + block * (B * 8));
      }
      if ((block + 1 - first_block) % hash_every_blocks == 0) {
        codes_hash.written_to(codes_end(block + 1));
        signs_hash.written_to(signs_end(block + 1));
      }
    }
    return codes_hash.finish(codes_end(end_block)) + signs_hash.finish(signs_end(end_block));
  }
};

/// Unpack n codes and either validate them, or decode them into out (assign, or add to what is
/// there). Threads take contiguous block ranges; validation reports the lowest invalid index and
/// the largest magnitude over all parts.
template <>
struct backend_impl<cpu_tag, decode_codes> {
  template <class T, class Coder>
  static code_check run(const cpu_policy& exec, const std::byte* in, std::size_t n,
                        const float* scales, std::size_t group, const Coder& coder,
                        decode_mode mode, T* out) {
    return with_coder_width(coder, [&](auto width) -> code_check {
      constexpr unsigned B = decltype(width)::value;
      const std::size_t count = ceil_div(n, codes_per_block);
      return parallel_reduce(
          exec, count, parallel_min_blocks, code_check{n, 0},
          [&](std::size_t first_block, std::size_t end_block) {
            return blocks<B>(in, n, first_block, end_block, scales, group, coder, mode, out);
          },
          [](code_check a, code_check b) {
            return code_check{std::min(a.first_invalid, b.first_invalid),
                              std::max(a.max_abs_bits, b.max_abs_bits)};
          });
    });
  }

private:
  template <unsigned B, class Coder>
  GRADCOMP_FORCEINLINE static void load_codes(const std::byte* in, std::size_t n, std::size_t block,
                                              std::size_t len, std::uint32_t* codes) {
    if constexpr (has_sign_plane<Coder> && B >= 2) {
      constexpr unsigned M = B - 1;
      load_block<M>(in + block * (M * 8), len, codes);
      std::byte tmp[8] = {}; // the block's 64 sign bits (fewer in the last block)
      std::memcpy(tmp, in + packed_bytes(n, M) + block * 8, packed_bytes(len, 1));
      const auto signs = load_le<std::uint64_t>(tmp);
      for (std::size_t j = 0; j < codes_per_block; ++j) {
        codes[j] |= static_cast<std::uint32_t>((signs >> j) & 1u) << M;
      }
    } else {
      load_block<B>(in + block * (B * 8), len, codes);
    }
  }

  /// Writes (assign) or adds (add) len decoded values to dst.
  template <class T>
  GRADCOMP_FORCEINLINE static void store_values(decode_mode mode, const float* values,
                                                std::size_t len, T* dst) {
    const rounding_barrier keep; // decoded products stay rounded before they are added
    if (mode == decode_mode::assign) {
      for (std::size_t j = 0; j < len; ++j) {
        dst[j] = from_float<T>(values[j]);
      }
    } else {
      for (std::size_t j = 0; j < len; ++j) {
        dst[j] = from_float<T>(to_float(dst[j]) + keep(values[j]));
      }
    }
  }

  /// Blocks [first_block, end_block): through a code table where the coder's width allows it
  /// and the span is long with one scale, else element by element.
  template <unsigned B, class T, class Coder>
  static code_check blocks(const std::byte* in, std::size_t n, std::size_t first_block,
                           std::size_t end_block, const float* scales, std::size_t group,
                           const Coder& coder, decode_mode mode, T* out) {
    if constexpr (table_decodable<Coder, B>) {
      if (n >= code_table<Coder, B>::min_elements && (scales == nullptr || group >= n)) {
        return table_blocks<B>(in, n, first_block, end_block, scales, group, coder, mode, out);
      }
    }
    return element_blocks<B>(in, n, first_block, end_block, scales, group, coder, mode, out);
  }

  template <unsigned B, class T, class Coder>
  static code_check table_blocks(const std::byte* in, std::size_t n, std::size_t first_block,
                                 std::size_t end_block, const float* scales, std::size_t group,
                                 const Coder& coder, decode_mode mode, T* out) {
    using table_t = code_table<Coder, B>;
    table_t table;
    table.build(coder, scales != nullptr ? scales[0] : 0.0f);
    const std::size_t whole_end = std::min(end_block, n / codes_per_block);
    std::uint32_t max_bits = 0;
    alignas(64) std::uint16_t index[8 * table_t::M];
    alignas(64) float values[codes_per_block];
    for (std::size_t block = first_block; block < whole_end; ++block) {
      std::uint64_t signs = 0;
      if constexpr (table_t::sign_plane) {
        signs = load_le<std::uint64_t>(in + packed_bytes(n, table_t::M) + block * 8);
      }
      table.entries_of(in + block * (table_t::M * 8), signs, index);
      if (mode == decode_mode::validate || mode == decode_mode::measure) {
        if (!table.valid(index)) { // the element search names the first invalid code
          const code_check c =
              element_blocks<B>(in, n, block, block + 1, scales, group, coder, mode, out);
          return {c.first_invalid, max_bits};
        }
        if (mode == decode_mode::measure) {
          max_bits = std::max(max_bits, table.max_bits(index));
        }
        continue;
      }
      table.values(index, values);
      store_values(mode, values, codes_per_block, out + block * codes_per_block);
    }
    if (whole_end >= end_block) {
      return {n, max_bits};
    }
    const code_check tail = element_blocks<B>(in, n, std::max(first_block, whole_end), end_block,
                                              scales, group, coder, mode, out);
    return {tail.first_invalid, std::max(max_bits, tail.max_abs_bits)};
  }

  template <unsigned B, class T, class Coder>
  static code_check element_blocks(const std::byte* in, std::size_t n, std::size_t first_block,
                                   std::size_t end_block, const float* scales, std::size_t group,
                                   const Coder& coder, decode_mode mode, T* out) {
    alignas(64) std::uint32_t codes[codes_per_block];
    alignas(64) float sc[codes_per_block];
    std::uint32_t max_bits = 0;
    const rounding_barrier keep; // decoded products stay rounded before they are added
    for (std::size_t block = first_block; block < end_block; ++block) {
      const std::size_t base = block * codes_per_block;
      const std::size_t len = std::min(codes_per_block, n - base);
      load_codes<B, Coder>(in, n, block, len, codes);
      if (mode == decode_mode::validate || mode == decode_mode::measure) {
        std::uint32_t all_valid = 1; // branch-free over the block; search only on failure
        for (std::size_t j = 0; j < len; ++j) {
          all_valid &= coder.valid(codes[j]) ? 1u : 0u;
        }
        if (all_valid == 0) {
          std::size_t j = 0;
          while (coder.valid(codes[j])) {
            ++j;
          }
          return {base + j, max_bits};
        }
        if (mode == decode_mode::measure) {
          with_block_scales(scales, group, base, len, sc, [&](auto scale) {
            for (std::size_t j = 0; j < len; ++j) {
              max_bits = std::max(max_bits, abs_bits(coder.decode(codes[j], scale(j))));
            }
          });
        }
        continue;
      }
      with_block_scales(scales, group, base, len, sc, [&](auto scale) {
        T* dst = out + base;
        if (mode == decode_mode::assign) {
          for (std::size_t j = 0; j < len; ++j) {
            dst[j] = from_float<T>(coder.decode(codes[j], scale(j)));
          }
        } else {
          for (std::size_t j = 0; j < len; ++j) {
            dst[j] = from_float<T>(to_float(dst[j]) + keep(coder.decode(codes[j], scale(j))));
          }
        }
      });
    }
    return {n, max_bits};
  }
};

} // namespace gradcomp::detail
