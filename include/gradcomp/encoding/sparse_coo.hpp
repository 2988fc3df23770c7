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
/// Checks the 16-byte header of a sparse span of `bytes` payload bytes for n elements against
/// the compressor c that should have written it (count, index width, flags, value scale, size);
/// returns k. Every violation is errc::corrupt_payload, prefixed by where(). The CPU and CUDA
/// decoders share it.
template <class E, class C, class Where>
std::size_t check_sparse_header(const C& c, const std::byte* h, std::size_t bytes, std::size_t n,
                                const Where& where) {
  require(bytes >= E::span_header_bytes, errc::corrupt_payload,
          [&] { return std::string(where() + "sparse span shorter than its 16-byte header"); });
  const auto k = load_le<std::uint64_t>(h);
  const auto w = load_le<std::uint8_t>(h + 8);
  const auto flags = load_le<std::uint8_t>(h + 9);
  const auto scale = load_le<float>(h + 12);
  require(k <= n, errc::corrupt_payload, [&] {
    return std::string(where() + "count " + std::to_string(k) + " exceeds the span size " +
                       std::to_string(n));
  });
  require(w == E::index_bytes(n), errc::corrupt_payload, [&] {
    return std::string(where() + "index width " + std::to_string(w) +
                       " is not the width for n = " + std::to_string(n));
  });
  require((flags & ~E::flag_implied) == 0 && load_le<std::uint16_t>(h + 10) == 0,
          errc::corrupt_payload,
          [&] { return std::string(where() + "unknown flags or non-zero reserved bits"); });
  const bool implied = (flags & E::flag_implied) != 0;
  bool expect_implied = false;
  float expect_scale = 1.0f;
  if constexpr (requires { c.shared_seed; }) {
    expect_implied = c.shared_seed;
    expect_scale = c.value_scale(n, k);
  }
  require(implied == expect_implied, errc::corrupt_payload, [&] {
    return std::string(where() + "indices-implied flag does not match the compressor");
  });
  require(float_bits(scale) == float_bits(expect_scale), errc::corrupt_payload,
          [&] { return std::string(where() + "value scale is not the one the compressor uses"); });
  if constexpr (requires { c.count(n); }) {
    require(k == c.count(n), errc::corrupt_payload, [&] {
      return std::string(where() + "count " + std::to_string(k) + ", the compressor keeps " +
                         std::to_string(c.count(n)));
    });
  }
  require(bytes == E::bytes(n, k, implied), errc::corrupt_payload, [&] {
    return std::string(where() + std::to_string(bytes) + " payload bytes, the format needs " +
                       std::to_string(E::bytes(n, k, implied)));
  });
  return static_cast<std::size_t>(k);
}

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
