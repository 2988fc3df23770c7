// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../core/float16.hpp"
#include "../detail/bits.hpp"
#include "../error.hpp"
#include "../payload.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

/// @file
/// Sparse index/value encoding. Span layout:
///     u64 k | u8 index bytes W | u8 flags (bit 0: indices implied) | u16 0 | f32 value scale
///     [k indices, W bytes each, LE, strictly increasing, < n]   (absent when implied)
///     [k values of V, LE]
/// W = 2 if n <= 65536, 4 if n <= 2^32, else 8. bytes = 16 + k W + k sizeof(V) (k W omitted when
/// implied). Decoded value = to_float(V) * scale; scale is 1 except for unbiased random-k (n/k).

namespace gradcomp {

/// Sparse index/value pairs; values stored as V (fp32, or fp16/bf16 rounded to nearest even).
template <gradient_value V = float>
struct sparse_coo {
  static constexpr encoding_id id = std::is_same_v<V, float>  ? encoding_id::sparse_coo_f32
                                    : std::is_same_v<V, half> ? encoding_id::sparse_coo_f16
                                                              : encoding_id::sparse_coo_bf16;
  static constexpr std::string_view name = std::is_same_v<V, float>  ? "sparse"
                                           : std::is_same_v<V, half> ? "sparse_f16"
                                                                     : "sparse_bf16";
  using value_type = V;
  template <class P>
  static constexpr bool accepts = std::is_same_v<P, sparse_payload>;
  friend constexpr bool operator==(sparse_coo, sparse_coo) = default;

  static constexpr std::size_t span_header_bytes = 16;
  static constexpr std::uint8_t flag_implied = 1;

  [[nodiscard]] static constexpr unsigned index_bytes(std::size_t n) noexcept {
    return n <= 65536u ? 2u : (static_cast<std::uint64_t>(n) <= (std::uint64_t{1} << 32) ? 4u : 8u);
  }
  [[nodiscard]] static constexpr std::size_t bytes(std::size_t n, std::size_t k,
                                                   bool implied) noexcept {
    return span_header_bytes + (implied ? 0 : k * index_bytes(n)) + k * sizeof(V);
  }
  static void store_index(std::byte* p, unsigned w, std::uint64_t i) noexcept {
    if (w == 2) {
      detail::store_le<std::uint16_t>(p, static_cast<std::uint16_t>(i));
    } else if (w == 4) {
      detail::store_le<std::uint32_t>(p, static_cast<std::uint32_t>(i));
    } else {
      detail::store_le<std::uint64_t>(p, i);
    }
  }
  [[nodiscard]] static std::uint64_t load_index(const std::byte* p, unsigned w) noexcept {
    return w == 2
               ? detail::load_le<std::uint16_t>(p)
               : (w == 4 ? detail::load_le<std::uint32_t>(p) : detail::load_le<std::uint64_t>(p));
  }
  static void store_value(std::byte* p, float v) noexcept {
    if constexpr (std::is_same_v<V, float>) {
      detail::store_le<float>(p, v);
    } else {
      detail::store_le<std::uint16_t>(p, from_float<V>(v).bits);
    }
  }
  [[nodiscard]] static float load_value(const std::byte* p) noexcept {
    if constexpr (std::is_same_v<V, float>) {
      return detail::load_le<float>(p);
    } else {
      return to_float(V{detail::load_le<std::uint16_t>(p)});
    }
  }
};

namespace detail {
/// Checks k stored indices of width w: each below n and strictly increasing; names the first
/// violation (errc::corrupt_payload) with the prefix where().
template <class Where>
void check_sparse_indices(const std::byte* q, std::size_t k, unsigned w, std::size_t n,
                          const Where& where) {
  std::uint64_t prev = 0;
  for (std::size_t j = 0; j < k; ++j) {
    const std::uint64_t i = sparse_coo<float>::load_index(q + j * w, w);
    require(i < n && (j == 0 || i > prev), errc::corrupt_payload, [&] {
      return std::string(where() + "index " + std::to_string(j) + " (" + std::to_string(i) +
                         ") is out of range or not strictly increasing");
    });
    prev = i;
  }
}
} // namespace detail

} // namespace gradcomp
