// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../detail/bits.hpp"
#include "../error.hpp"
#include "sparse_span_header.hpp"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

/// @file
/// How a sparse span stores its k strictly increasing indices below n: the index section after
/// the 16-byte sparse span header (encoding/sparse_span_header.hpp), whose byte 8 holds the
/// coding's parameter. An encoding policy of sparse_coo and sparse_codes.
///  - fixed_width_indices: k little-endian integers of W = sparse_index_bytes(n) bytes;
///    byte 8 = W. 16 or 32 bits per index, byte aligned.
///  - elias_fano_indices: Elias-Fano; byte 8 = l, the largest integer with k 2^l <= n (0 when
///    k = 0), and header flag bit 1 set. Index i_j splits into its low l bits and its high part
///    h_j = i_j >> l. The section holds the low parts, k l bits packed least significant first
///    and zero-padded to a byte, then the high parts in unary: bit h_j + j set, for each j, in a
///    stream of k + ((n - 1) >> l) + 1 bits, zero-padded to a byte. At most 2 + log2(n/k) bits
///    per index: within 2 bits of the information limit log2 C(n, k) / k.
/// Both are canonical (one byte string per index set), and decoders reject any other string.

namespace gradcomp {

namespace detail {
/// Checks the k indices a coding's for_each yields: each below n and above the one before;
/// names the first violation (errc::corrupt_payload) with the prefix where().
template <class Coding, class Where>
void require_increasing_indices(const std::byte* src, std::size_t k, std::size_t n,
                                const Where& where) {
  std::uint64_t prev = 0;
  Coding::for_each(src, k, n, [&](std::size_t j, std::uint64_t i) {
    require(i < n && (j == 0 || i > prev), errc::corrupt_payload, [&] {
      return std::string(where() + "index " + std::to_string(j) + " (" + std::to_string(i) +
                         ") is out of range or not strictly increasing");
    });
    prev = i;
  });
}
} // namespace detail

/// Indices as little-endian integers of sparse_index_bytes(n) bytes (the default).
struct fixed_width_indices {
  static constexpr std::uint8_t header_flag = 0;
  static constexpr std::string_view suffix = "";
  friend constexpr bool operator==(fixed_width_indices, fixed_width_indices) = default;

  /// Byte 8 of the span header: the index width.
  [[nodiscard]] static constexpr unsigned parameter(std::size_t n, std::size_t) noexcept {
    return detail::sparse_index_bytes(n);
  }
  [[nodiscard]] static constexpr std::size_t bytes(std::size_t n, std::size_t k) noexcept {
    return k * detail::sparse_index_bytes(n);
  }
  static void store(std::byte* p, unsigned w, std::uint64_t i) noexcept {
    if (w == 2) {
      detail::store_le<std::uint16_t>(p, static_cast<std::uint16_t>(i));
    } else if (w == 4) {
      detail::store_le<std::uint32_t>(p, static_cast<std::uint32_t>(i));
    } else {
      detail::store_le<std::uint64_t>(p, i);
    }
  }
  [[nodiscard]] static std::uint64_t load(const std::byte* p, unsigned w) noexcept {
    return w == 2
               ? detail::load_le<std::uint16_t>(p)
               : (w == 4 ? detail::load_le<std::uint32_t>(p) : detail::load_le<std::uint64_t>(p));
  }

  /// Writes the k ascending indices idx (each below n).
  static void write(std::byte* dst, const std::size_t* idx, std::size_t k, std::size_t n) noexcept {
    const unsigned w = detail::sparse_index_bytes(n);
    for (std::size_t j = 0; j < k; ++j) {
      store(dst + j * w, w, idx[j]);
    }
  }
  /// Checks a section of bytes(n, k) bytes: each index below n and strictly increasing; names
  /// the first violation (errc::corrupt_payload) with the prefix where().
  template <class Where>
  static void validate(const std::byte* src, std::size_t k, std::size_t n, const Where& where) {
    detail::require_increasing_indices<fixed_width_indices>(src, k, n, where);
  }
  /// Calls f(j, i_j) for the k indices of a section, in order.
  template <class F>
  static void for_each(const std::byte* src, std::size_t k, std::size_t n, F&& f) {
    const unsigned w = detail::sparse_index_bytes(n);
    for (std::size_t j = 0; j < k; ++j) {
      f(j, load(src + j * w, w));
    }
  }
};

/// Indices coded Elias-Fano (layout above): about 2 + log2(n/k) bits per index.
struct elias_fano_indices {
  static constexpr std::uint8_t header_flag = detail::sparse_span_header::flag_elias_fano;
  static constexpr std::string_view suffix = "-ef";
  friend constexpr bool operator==(elias_fano_indices, elias_fano_indices) = default;

  /// Byte 8 of the span header: l, the number of low bits.
  [[nodiscard]] static constexpr unsigned parameter(std::size_t n, std::size_t k) noexcept {
    return low_bits(n, k);
  }
  [[nodiscard]] static constexpr unsigned low_bits(std::size_t n, std::size_t k) noexcept {
    return k == 0 || n < k ? 0u : static_cast<unsigned>(std::bit_width(n / k)) - 1u;
  }
  [[nodiscard]] static constexpr std::size_t low_bytes(std::size_t n, std::size_t k) noexcept {
    return detail::ceil_div(k * low_bits(n, k), 8);
  }
  /// Bits of the unary stream of the high parts.
  [[nodiscard]] static constexpr std::size_t high_stream_bits(std::size_t n,
                                                              std::size_t k) noexcept {
    return k == 0 ? 0 : k + ((n - 1) >> low_bits(n, k)) + 1;
  }
  [[nodiscard]] static constexpr std::size_t bytes(std::size_t n, std::size_t k) noexcept {
    return low_bytes(n, k) + detail::ceil_div(high_stream_bits(n, k), 8);
  }

  /// Writes the k ascending indices idx (each below n).
  static void write(std::byte* dst, const std::size_t* idx, std::size_t k, std::size_t n) noexcept {
    const unsigned l = low_bits(n, k);
    const std::size_t lows = low_bytes(n, k);
    if (k == 0) {
      return; // an empty section: no bytes, dst may be null
    }
    std::memset(dst, 0, bytes(n, k));
    if (l != 0) {
      const std::uint64_t mask = (std::uint64_t{1} << l) - 1;
      std::uint64_t acc = 0;
      unsigned filled = 0;
      std::byte* out = dst;
      for (std::size_t j = 0; j < k; ++j) {
        const std::uint64_t low = idx[j] & mask;
        acc |= low << filled;
        filled += l;
        if (filled >= 64) {
          detail::store_le<std::uint64_t>(out, acc);
          out += 8;
          filled -= 64;
          acc = filled != 0 ? low >> (l - filled) : 0;
        }
      }
      for (unsigned b = 0; b < filled; b += 8, ++out) {
        *out = static_cast<std::byte>(acc >> b);
      }
    }
    std::byte* high = dst + lows;
    for (std::size_t j = 0; j < k; ++j) {
      const std::size_t p = (idx[j] >> l) + j;
      high[p / 8] |= static_cast<std::byte>(1u << (p % 8));
    }
  }

  /// Checks a section of bytes(n, k) bytes: exactly k high bits set, each decoded index below n
  /// and above the one before, zero padding after the low parts; names the first violation
  /// (errc::corrupt_payload) with the prefix where().
  template <class Where>
  static void validate(const std::byte* src, std::size_t k, std::size_t n, const Where& where) {
    const std::size_t lows = low_bytes(n, k);
    const std::size_t high_bytes = bytes(n, k) - lows;
    std::size_t set = 0;
    for (std::size_t b = 0; b < high_bytes; b += 8) {
      set += static_cast<std::size_t>(std::popcount(load_word(src + lows + b, high_bytes - b)));
    }
    detail::require(set == k, errc::corrupt_payload, [&] {
      return std::string(where() + "Elias-Fano high parts: " + std::to_string(set) +
                         " bits set, the span keeps " + std::to_string(k));
    });
    const std::size_t low_total = k * low_bits(n, k);
    if (low_total % 8 != 0) {
      const auto last = std::to_integer<unsigned>(src[lows - 1]);
      detail::require((last >> (low_total % 8)) == 0, errc::corrupt_payload, [&] {
        return std::string(where() + "Elias-Fano low parts: padding bits are not zero");
      });
    }
    detail::require_increasing_indices<elias_fano_indices>(src, k, n, where);
  }

  /// Calls f(j, i_j) for the indices of a section whose high stream has k bits set (validate
  /// checks it), in order; reads only the section's bytes(n, k) bytes.
  template <class F>
  static void for_each(const std::byte* src, std::size_t k, std::size_t n, F&& f) {
    const unsigned l = low_bits(n, k);
    const std::size_t lows = low_bytes(n, k);
    const std::size_t high_bytes = bytes(n, k) - lows;
    const std::byte* high = src + lows;
    const std::uint64_t mask = l == 0 ? 0 : (std::uint64_t{1} << l) - 1;
    std::size_t j = 0;
    for (std::size_t b = 0; b < high_bytes && j < k; b += 8) {
      std::uint64_t word = load_word(high + b, high_bytes - b);
      while (word != 0 && j < k) {
        const std::size_t p = b * 8 + static_cast<std::size_t>(std::countr_zero(word));
        word &= word - 1;
        const std::size_t bit = j * l; // the low part of index j
        const std::uint64_t low = l == 0 ? 0 : (read_bits(src, lows, bit) & mask);
        f(j, (static_cast<std::uint64_t>(p - j) << l) | low);
        ++j;
      }
    }
  }

private:
  /// Up to 8 bytes at p (fewer when `left` < 8), little-endian, zero-extended.
  [[nodiscard]] static std::uint64_t load_word(const std::byte* p, std::size_t left) noexcept {
    if (left >= 8) {
      return detail::load_le<std::uint64_t>(p);
    }
    std::uint64_t w = 0;
    for (std::size_t i = 0; i < left; ++i) {
      w |= std::to_integer<std::uint64_t>(p[i]) << (8 * i);
    }
    return w;
  }
  /// The 64 bits of the low stream (of `bytes` bytes at p) from bit `bit` on (zero-extended).
  [[nodiscard]] static std::uint64_t read_bits(const std::byte* p, std::size_t bytes,
                                               std::size_t bit) noexcept {
    const std::size_t at = bit / 8;
    const unsigned shift = static_cast<unsigned>(bit % 8);
    const std::uint64_t lo = load_word(p + at, bytes - at) >> shift;
    if (shift == 0 || at + 8 >= bytes) {
      return lo;
    }
    return lo | (std::to_integer<std::uint64_t>(p[at + 8]) << (64 - shift));
  }
};

namespace detail {
template <class I>
inline constexpr bool is_index_coding =
    std::is_same_v<I, fixed_width_indices> || std::is_same_v<I, elias_fano_indices>;
} // namespace detail

} // namespace gradcomp
