// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../compressor/selection_rule.hpp"
#include "../core/float16.hpp"
#include "../detail/bits.hpp"
#include "../detail/dispatch.hpp"
#include "../detail/rounding_barrier.hpp"
#include "../error.hpp"
#include "../payload.hpp"
#include "sparse_span_header.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

/// @file
/// Sparse index/value encoding. Span layout:
///     [16-byte sparse span header (encoding/sparse_span_header.hpp): k, W, flags, value scale]
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

  static constexpr std::size_t span_header_bytes = detail::sparse_span_header::bytes;
  static constexpr std::uint8_t flag_implied = detail::sparse_span_header::flag_implied;

  [[nodiscard]] static constexpr unsigned index_bytes(std::size_t n) noexcept {
    return detail::sparse_index_bytes(n);
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
/// the sparsifier c that should have written it (count, index width, flags, value scale, size);
/// returns k. Every violation is errc::corrupt_payload, prefixed by where(). The CPU and CUDA
/// decoders share it.
template <class E, class C, class Where>
std::size_t check_sparse_header(const C& c, const std::byte* h, std::size_t bytes, std::size_t n,
                                const Where& where) {
  static_assert(require_sparsifier<C>());
  require(bytes >= sparse_span_header::bytes, errc::corrupt_payload,
          [&] { return std::string(where() + "sparse span shorter than its 16-byte header"); });
  const sparse_span_header head = sparse_span_header::read(h);
  const std::uint64_t k = head.count;
  require(k <= n, errc::corrupt_payload, [&] {
    return std::string(where() + "count " + std::to_string(k) + " exceeds the span size " +
                       std::to_string(n));
  });
  require(head.index_bytes == E::index_bytes(n), errc::corrupt_payload, [&] {
    return std::string(where() + "index width " + std::to_string(head.index_bytes) +
                       " is not the width for n = " + std::to_string(n));
  });
  require((head.flags & ~sparse_span_header::flag_implied) == 0 && head.reserved == 0,
          errc::corrupt_payload,
          [&] { return std::string(where() + "unknown flags or non-zero reserved bits"); });
  require(head.implied() == c.indices_implied(), errc::corrupt_payload, [&] {
    return std::string(where() + "indices-implied flag does not match the compressor");
  });
  require(float_bits(head.value_scale) == float_bits(c.value_scale(n, k)), errc::corrupt_payload,
          [&] { return std::string(where() + "value scale is not the one the compressor uses"); });
  if constexpr (keeps_fixed_count<C>) {
    require(k == c.count(n), errc::corrupt_payload, [&] {
      return std::string(where() + "count " + std::to_string(k) + ", the compressor keeps " +
                         std::to_string(c.count(n)));
    });
  }
  require(bytes == E::bytes(n, k, head.implied()), errc::corrupt_payload, [&] {
    return std::string(where() + std::to_string(bytes) + " payload bytes, the format needs " +
                       std::to_string(E::bytes(n, k, head.implied())));
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

/// One sparse_coo span of n elements (layout above): what the codec writes, validates and
/// decodes. Indices of an implied span are the ones the receiver regenerated (`regenerated`).
template <class E>
struct sparse_coo_span {
  static constexpr std::size_t value_bytes = sizeof(typename E::value_type);

  /// Whether kept value v cannot be sent: beyond the stored value type, or not finite once the
  /// decoder scales the stored value (unbiased random-k's n/k). Every backend's test.
  [[nodiscard]] static GRADCOMP_HOST_DEVICE bool value_unfit(float v, float value_scale) noexcept {
    using V = typename E::value_type;
    return abs_bits(v) >= value_traits<V>::overflow_abs_bits ||
           is_non_finite(to_float(from_float<V>(v)) * value_scale);
  }
  /// The error for kept value v at span-local element `index` of the span where() names.
  template <class Where>
  [[noreturn]] static void fail_unfit(float v, std::size_t index, const Where& where) {
    fail(errc::value_out_of_range, "kept value " + std::to_string(v) + " in " + where() +
                                       " at element " + std::to_string(index) +
                                       " overflows the encoding's value type or scale");
  }
  /// Throws value_out_of_range (fail_unfit) at the first kept value x[idx[j]] that value_unfit.
  template <class T, class Where>
  static void require_values_fit(const T* x, const std::size_t* idx, std::size_t k,
                                 float value_scale, const Where& where) {
    for (std::size_t j = 0; j < k; ++j) {
      const float v = to_float(x[idx[j]]);
      if (value_unfit(v, value_scale)) {
        fail_unfit(v, idx[j], where);
      }
    }
  }

  /// Writes the span keeping x[idx[j]] for the k ascending span-local indices idx.
  template <class T>
  static void write(std::byte* dst, const T* x, std::size_t n, const std::size_t* idx,
                    std::size_t k, bool implied, float value_scale) {
    const sparse_span_header head = sparse_span_header::make(n, k, implied, value_scale);
    head.write(dst);
    std::byte* q = dst + sparse_span_header::bytes;
    if (!implied) {
      for (std::size_t j = 0; j < k; ++j) {
        E::store_index(q + j * head.index_bytes, head.index_bytes, idx[j]);
      }
      q += k * head.index_bytes;
    }
    for (std::size_t j = 0; j < k; ++j) {
      E::store_value(q + j * value_bytes, to_float(x[idx[j]]));
    }
  }

  /// Validates the span of `bytes` bytes against sparsifier c: header, stored indices, values
  /// (finite, and finite times the value scale). Returns the largest |decoded value| (fp32 bits).
  template <class C, class Where>
  static std::uint32_t validate(const C& c, const std::byte* src, std::size_t bytes, std::size_t n,
                                const Where& where) {
    const std::size_t k = check_sparse_header<E>(c, src, bytes, n, where);
    const sparse_span_header head = sparse_span_header::read(src);
    if (!head.implied()) {
      check_sparse_indices(src + sparse_span_header::bytes, k, head.index_bytes, n, where);
    }
    const std::byte* values = values_of(src, head);
    std::uint32_t max_bits = 0;
    for (std::size_t j = 0; j < k; ++j) {
      const float v = E::load_value(values + j * value_bytes);
      const std::uint32_t bits = abs_bits(v * head.value_scale);
      require(!is_non_finite(v) && bits < inf_abs_bits, errc::corrupt_payload, [&] {
        return std::string(
            where() + "value " + std::to_string(j) +
            (is_non_finite(v) ? " is not finite" : " times the value scale overflows"));
      });
      max_bits = std::max(max_bits, bits);
    }
    return max_bits;
  }

  /// Calls f(i) for the span-local index of every value of a validated span, in order.
  template <class F>
  static void for_each_index(const std::byte* src, const std::size_t* regenerated, F&& f) {
    const sparse_span_header head = sparse_span_header::read(src);
    const std::byte* q = src + sparse_span_header::bytes;
    for (std::size_t j = 0; j < head.count; ++j) {
      f(head.implied()
            ? regenerated[j]
            : static_cast<std::size_t>(E::load_index(q + j * head.index_bytes, head.index_bytes)));
    }
  }

  /// Writes a validated span into dst[0, n): assigned (zeros elsewhere) or added.
  template <class T>
  static void decode(const std::byte* src, std::size_t n, const std::size_t* regenerated,
                     decode_mode mode, T* dst) {
    const sparse_span_header head = sparse_span_header::read(src);
    const std::byte* values = values_of(src, head);
    if (mode == decode_mode::assign) {
      std::fill(dst, dst + n, from_float<T>(0.0f));
    }
    const rounding_barrier keep; // the scaled value stays rounded before it is added
    std::size_t j = 0;
    for_each_index(src, regenerated, [&](std::size_t i) {
      const float v = keep(E::load_value(values + j++ * value_bytes) * head.value_scale);
      dst[i] = from_float<T>(mode == decode_mode::add ? to_float(dst[i]) + v : v);
    });
  }

private:
  [[nodiscard]] static const std::byte* values_of(const std::byte* src,
                                                  const sparse_span_header& head) {
    return src + sparse_span_header::bytes + (head.implied() ? 0 : head.count * head.index_bytes);
  }
};
} // namespace detail

} // namespace gradcomp
