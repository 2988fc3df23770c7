// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../core/float16.hpp"
#include "../../detail/bit_pack.hpp"
#include "../../detail/bits.hpp"
#include "../../detail/dispatch.hpp"
#include "../../math/rounding.hpp"
#include "../../random/stream_key.hpp"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

namespace gradcomp::detail {

/// Per-element scale of a block: element j of the block (span-local index base + j) uses
/// scales[(base + j) / group]; written without a division per element.
inline void block_scales(const float* scales, std::size_t group, std::size_t base, std::size_t len,
                         float* out) noexcept {
  if (scales == nullptr) {
    std::fill(out, out + len, 0.0f);
    return;
  }
  std::size_t g = base / group;
  std::size_t next = (g + 1) * group;
  if (base + len <= next) { // the whole block shares one scale (always, for one scale per span)
    std::fill(out, out + len, scales[g]);
    return;
  }
  for (std::size_t j = 0; j < len; ++j) {
    if (base + j == next) {
      ++g;
      next += group;
    }
    out[j] = scales[g];
  }
}

/// Eight consecutive Philox4x32-10 blocks (counters first .. first+7) written as 128 bytes,
/// lanes little-endian. Uses 8-lane vectors where the compiler offers them (GCC/Clang vector
/// extensions: one vpmuludq per round per multiplier with AVX-512), else the scalar generator.
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
  for (int q = 0; q < 8; ++q) {
    store_le<std::uint32_t>(out + 16 * q, static_cast<std::uint32_t>(c0[q]));
    store_le<std::uint32_t>(out + 16 * q + 4, static_cast<std::uint32_t>(c1[q]));
    store_le<std::uint32_t>(out + 16 * q + 8, static_cast<std::uint32_t>(c2[q]));
    store_le<std::uint32_t>(out + 16 * q + 12, static_cast<std::uint32_t>(c3[q]));
  }
#else
  for (std::uint64_t q = 0; q < 8; ++q) {
    const philox_counter v = rs.block(first + q);
    for (std::size_t l = 0; l < 4; ++l) {
      store_le<std::uint32_t>(out + 16 * q + 4 * l, v[l]);
    }
  }
#endif
}

/// The high random bytes a_i (math/rounding.hpp) of consecutive elements: byte i%4 of lane
/// (i/4)%4 of Philox block i/16. Caches 128 elements' bytes (eight blocks) at a time.
class high8_source {
public:
  explicit high8_source(const random_stream& rs) noexcept : rs_(rs) {}
  /// a_i for global elements g0 .. g0+len-1, len <= 64.
  void fill(std::uint64_t g0, std::size_t len, std::uint32_t* out) noexcept {
    if (g0 < first_ || g0 + len > first_ + 128) {
      first_ = g0 & ~std::uint64_t{15};
      philox_blocks8(rs_, first_ >> 4, bytes_);
    }
    const std::byte* src = bytes_ + (g0 - first_);
    for (std::size_t j = 0; j < len; ++j) {
      out[j] = static_cast<std::uint32_t>(src[j]);
    }
  }

private:
  random_stream rs_;
  std::uint64_t first_ = ~std::uint64_t{0} - 256;
  alignas(64) std::byte bytes_[128] = {};
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

/// Quantize n elements with a coder and pack the codes (detail/bit_pack.hpp) into out.
template <>
struct backend_impl<cpu_tag, encode_codes> {
  template <class T, class Coder>
  static void run(const cpu_policy&, const T* x, std::size_t n, std::uint64_t global_begin,
                  const float* scales, std::size_t group, const random_stream& rs,
                  const Coder& coder, std::byte* out) {
    with_coder_width(coder, [&](auto width) {
      constexpr unsigned B = decltype(width)::value;
      alignas(64) float xf[codes_per_block];
      alignas(64) float sc[codes_per_block] = {};
      alignas(64) std::uint32_t high8[codes_per_block] = {};
      alignas(64) std::uint64_t threshold[codes_per_block];
      alignas(64) std::uint32_t up[codes_per_block];
      alignas(64) std::uint32_t codes[codes_per_block];
      const random_stream low = rs.with_purpose(random_purpose::rounding_low);
      high8_source high(rs);
      std::uint64_t words[B];
      for (std::size_t base = 0; base < n; base += codes_per_block) {
        const std::size_t len = std::min(codes_per_block, n - base);
        const float* xs = xf;
        if constexpr (std::is_same_v<T, float>) {
          xs = x + base;
        } else {
          for (std::size_t j = 0; j < len; ++j) {
            xf[j] = to_float(x[base + j]);
          }
        }
        if (scales != nullptr) {
          block_scales(scales, group, base, len, sc);
        }
        if constexpr (Coder::uses_random) {
          // Decide every element by its high random byte; the rare ties (p <= 1/256 each) read
          // the low 24 bits (math/rounding.hpp).
          high.fill(global_begin + base, len, high8);
          for (std::size_t j = 0; j < len; ++j) {
            threshold[j] = coder.threshold(xs[j], sc[j]);
          }
          std::uint64_t tie_mask = 0; // bit j: element j's high byte equals its threshold's
          for (std::size_t j = 0; j < len; ++j) {
            const auto t_hi = static_cast<std::uint32_t>(threshold[j] >> 24);
            up[j] = high8[j] < t_hi ? 1u : 0u;
            tie_mask |= static_cast<std::uint64_t>(high8[j] == t_hi ? 1u : 0u) << j;
          }
          while (tie_mask != 0) { // about one element in 256
            const auto j = static_cast<std::size_t>(std::countr_zero(tie_mask));
            tie_mask &= tie_mask - 1;
            up[j] = (low.bits32(global_begin + base + j) & 0xffffffu) <
                            static_cast<std::uint32_t>(threshold[j] & 0xffffffu)
                        ? 1u
                        : 0u;
          }
          for (std::size_t j = 0; j < len; ++j) {
            codes[j] = coder.code(xs[j], sc[j], up[j]);
          }
        } else {
          for (std::size_t j = 0; j < len; ++j) {
            codes[j] = coder.code(xs[j], sc[j], 0u);
          }
        }
        std::byte* dst = out + (base / codes_per_block) * (B * 8);
        if (len == codes_per_block) {
          if constexpr (byte_packable<B>) {
            pack_block_bytes<B>(codes, dst);
          } else {
            pack_block<B>(codes, words);
            for (std::size_t w = 0; w < B; ++w) {
              store_le(dst + w * 8, words[w]);
            }
          }
          continue;
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
    });
  }
};

enum class decode_mode { validate, assign, add };

/// Unpack n codes and either validate them (returns the index of the first invalid code, or
/// n), or decode them into out (assign, or add to what is there).
template <>
struct backend_impl<cpu_tag, decode_codes> {
  template <class T, class Coder>
  static std::size_t run(const cpu_policy&, const std::byte* in, std::size_t n, const float* scales,
                         std::size_t group, const Coder& coder, decode_mode mode, T* out) {
    return with_coder_width(coder, [&](auto width) -> std::size_t {
      constexpr unsigned B = decltype(width)::value;
      alignas(64) std::uint32_t codes[codes_per_block];
      alignas(64) float sc[codes_per_block];
      std::uint64_t words[B];
      for (std::size_t base = 0; base < n; base += codes_per_block) {
        const std::size_t len = std::min(codes_per_block, n - base);
        const std::size_t bytes = packed_bytes(len, B);
        const std::byte* src = in + (base / codes_per_block) * (B * 8);
        for (std::size_t w = 0; w < B; ++w) {
          std::byte tmp[8] = {};
          if (w * 8 < bytes) {
            std::memcpy(tmp, src + w * 8, std::min<std::size_t>(8, bytes - w * 8));
          }
          words[w] = load_le<std::uint64_t>(tmp);
        }
        unpack_block<B>(words, codes);
        if (mode == decode_mode::validate) {
          for (std::size_t j = 0; j < len; ++j) {
            if (!coder.valid(codes[j])) {
              return base + j;
            }
          }
          continue;
        }
        block_scales(scales, group, base, len, sc);
        if (mode == decode_mode::assign) {
          for (std::size_t j = 0; j < len; ++j) {
            out[base + j] = from_float<T>(coder.decode(codes[j], sc[j]));
          }
        } else {
          for (std::size_t j = 0; j < len; ++j) {
            out[base + j] = from_float<T>(to_float(out[base + j]) + coder.decode(codes[j], sc[j]));
          }
        }
      }
      return n;
    });
  }
};

} // namespace gradcomp::detail
