// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../core/float16.hpp"
#include "../../detail/bit_pack.hpp"
#include "../../detail/bits.hpp"
#include "../../detail/dispatch.hpp"
#include "../../detail/prehashed_blocks.hpp"
#include "../../detail/rounding_barrier.hpp"
#include "../../random/stream_key.hpp"
#include "code_blocks.hpp"
#include "code_tables.hpp"
#include "parallel.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace gradcomp::detail {

/// Code blocks of 64 elements per part when a call uses several threads (2^15 elements).
inline constexpr std::size_t parallel_min_blocks = 512;

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
    code_streams_hash<M, sign_plane, std::byte> hash(hashed, out, n, first_block);
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
        store_block<M>(codes, len, hash.codes_at(block));
        store_block<1>(signs, len, hash.signs_at(block));
      } else {
        store_block<B>(codes, len, out + block * (B * 8));
      }
      hash.done_to(block + 1);
    }
    return hash.finish(end_block);
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
                        decode_mode mode, T* out, prehashed_blocks* hashed = nullptr) {
    if (mode == decode_mode::assign || mode == decode_mode::add) {
      hashed = nullptr; // hashed while validating
    }
    return with_coder_width(coder, [&](auto width) -> code_check {
      constexpr unsigned B = decltype(width)::value;
      const std::size_t count = ceil_div(n, codes_per_block);
      return parallel_reduce(
          exec, count, parallel_min_blocks, code_check{n, 0, 0},
          [&](std::size_t first_block, std::size_t end_block) {
            return blocks<B>(in, n, first_block, end_block, scales, group, coder, mode, out,
                             hashed);
          },
          [](code_check a, code_check b) {
            return code_check{std::min(a.first_invalid, b.first_invalid),
                              std::max(a.max_abs_bits, b.max_abs_bits),
                              a.digest_sum + b.digest_sum};
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
                           const Coder& coder, decode_mode mode, T* out, prehashed_blocks* hashed) {
    constexpr bool sign_plane = has_sign_plane<Coder> && B >= 2;
    code_streams_hash<sign_plane ? B - 1 : B, sign_plane, const std::byte> hash(hashed, in, n,
                                                                                first_block);
    code_check check{};
    if constexpr (table_decodable<Coder, B>) {
      if (n >= code_table<Coder, B>::min_elements && (scales == nullptr || group >= n)) {
        check =
            table_blocks<B>(in, n, first_block, end_block, scales, group, coder, mode, out, &hash);
        return finish_hash(check, n, hash, end_block);
      }
    }
    check =
        element_blocks<B>(in, n, first_block, end_block, scales, group, coder, mode, out, &hash);
    return finish_hash(check, n, hash, end_block);
  }
  /// A part's check with the digest sum of the blocks it hashed (none when it found a bad code).
  template <class Hash>
  static code_check finish_hash(code_check check, std::size_t n, Hash& hash, std::size_t end) {
    if (check.first_invalid == n) {
      check.digest_sum = hash.finish(end);
    }
    return check;
  }

  /// hash (nullable): the part's code_streams_hash, told of each finished block.
  template <unsigned B, class T, class Coder, class Hash>
  static code_check table_blocks(const std::byte* in, std::size_t n, std::size_t first_block,
                                 std::size_t end_block, const float* scales, std::size_t group,
                                 const Coder& coder, decode_mode mode, T* out, Hash* hash) {
    using table_t = code_table<Coder, B>;
    table_t table;
    table.build(coder, scales != nullptr ? scales[0] : 0.0f);
    const std::size_t whole_end = std::min(end_block, n / codes_per_block);
    std::uint32_t max_bits = 0;
    alignas(64) std::uint16_t index[8 * table_t::M];
    alignas(64) float values[codes_per_block];
    for (std::size_t block = first_block; block < whole_end; ++block) {
      hash->done_to(block);
      std::uint64_t signs = 0;
      if constexpr (table_t::sign_plane) {
        signs = load_le<std::uint64_t>(in + packed_bytes(n, table_t::M) + block * 8);
      }
      table.entries_of(in + block * (table_t::M * 8), signs, index);
      if (mode == decode_mode::validate || mode == decode_mode::measure) {
        if (!table.valid(index)) { // the element search names the first invalid code
          const code_check c = element_blocks<B>(in, n, block, block + 1, scales, group, coder,
                                                 mode, out, static_cast<Hash*>(nullptr));
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
                                              scales, group, coder, mode, out, hash);
    return {tail.first_invalid, std::max(max_bits, tail.max_abs_bits)};
  }

  template <unsigned B, class T, class Coder, class Hash>
  static code_check element_blocks(const std::byte* in, std::size_t n, std::size_t first_block,
                                   std::size_t end_block, const float* scales, std::size_t group,
                                   const Coder& coder, decode_mode mode, T* out, Hash* hash) {
    alignas(64) std::uint32_t codes[codes_per_block];
    alignas(64) float sc[codes_per_block];
    std::uint32_t max_bits = 0;
    const rounding_barrier keep; // decoded products stay rounded before they are added
    for (std::size_t block = first_block; block < end_block; ++block) {
      if (hash != nullptr) {
        hash->done_to(block);
      }
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
