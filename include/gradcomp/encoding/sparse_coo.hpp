// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../compressor/selection_rule.hpp"
#include "../core/float16.hpp"
#include "../detail/bits.hpp"
#include "../detail/dispatch.hpp"
#include "../detail/rounding_barrier.hpp"
#include "../error.hpp"
#include "../payload.hpp"
#include "index_coding.hpp"
#include "sparse_span_header.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

/// @file
/// Sparse index/value encoding. Span layout:
///     [16-byte sparse span header (encoding/sparse_span_header.hpp): k, the index coding's
///      parameter, flags, value scale]
///     [the k indices, strictly increasing, < n, in the index coding I]   (absent when implied)
///     [k values of V, LE]
/// I (encoding/index_coding.hpp) is fixed_width_indices (W = 2 bytes if n <= 65536, 4 if
/// n <= 2^32, else 8) or elias_fano_indices (about 2 + log2(n/k) bits per index). bytes = 16 +
/// I::bytes(n, k) + k sizeof(V) (the indices omitted when implied). Decoded value =
/// to_float(V) * scale; scale is 1 except for unbiased random-k (n/k).

namespace gradcomp {

namespace detail {
template <class V, class I>
[[nodiscard]] constexpr encoding_id sparse_coo_id() noexcept {
  constexpr bool ef = std::is_same_v<I, elias_fano_indices>;
  if constexpr (std::is_same_v<V, float>) {
    return ef ? encoding_id::sparse_coo_f32_ef : encoding_id::sparse_coo_f32;
  } else if constexpr (std::is_same_v<V, half>) {
    return ef ? encoding_id::sparse_coo_f16_ef : encoding_id::sparse_coo_f16;
  } else {
    return ef ? encoding_id::sparse_coo_bf16_ef : encoding_id::sparse_coo_bf16;
  }
}
template <class V, class I>
[[nodiscard]] constexpr std::string_view sparse_coo_name() noexcept {
  constexpr bool ef = std::is_same_v<I, elias_fano_indices>;
  if constexpr (std::is_same_v<V, float>) {
    return ef ? "sparse_ef" : "sparse";
  } else if constexpr (std::is_same_v<V, half>) {
    return ef ? "sparse_f16_ef" : "sparse_f16";
  } else {
    return ef ? "sparse_bf16_ef" : "sparse_bf16";
  }
}
} // namespace detail

/// Sparse index/value pairs; values stored as V (fp32, or fp16/bf16 rounded to nearest even),
/// indices in the index coding I.
template <gradient_value V = float, class I = fixed_width_indices>
struct sparse_coo {
  static_assert(detail::is_index_coding<I>,
                "sparse_coo<V, I>: I must be fixed_width_indices or elias_fano_indices");
  static constexpr encoding_id id = detail::sparse_coo_id<V, I>();
  static constexpr std::string_view name = detail::sparse_coo_name<V, I>();
  using value_type = V;
  using index_coding = I;
  template <class P>
  static constexpr bool accepts = std::is_same_v<P, sparse_payload>;
  friend constexpr bool operator==(sparse_coo, sparse_coo) = default;

  static constexpr std::size_t span_header_bytes = detail::sparse_span_header::bytes;
  static constexpr std::uint8_t flag_implied = detail::sparse_span_header::flag_implied;

  /// The fixed index width for n elements (fixed_width_indices; the CUDA backend's layout).
  [[nodiscard]] static constexpr unsigned index_bytes(std::size_t n) noexcept {
    return detail::sparse_index_bytes(n);
  }
  [[nodiscard]] static constexpr std::size_t bytes(std::size_t n, std::size_t k,
                                                   bool implied) noexcept {
    return span_header_bytes + (implied ? 0 : I::bytes(n, k)) + k * sizeof(V);
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
/// Checks the header's index-coding fields for a span of n elements keeping head.count (at
/// most n): byte 8 is I's parameter, the flags I's flag (plus the implied bit), reserved zero.
template <class I, class Where>
void require_index_parameter(const sparse_span_header& head, std::size_t n, const Where& where) {
  const auto k = static_cast<std::size_t>(head.count);
  require(head.index_bytes == I::parameter(n, k), errc::corrupt_payload, [&] {
    return std::string(
        where() + (I::header_flag != 0 ? "Elias-Fano low-bit count " : "index width ") +
        std::to_string(head.index_bytes) + " is not the one for n = " + std::to_string(n) +
        ", k = " + std::to_string(k));
  });
  require((head.flags & ~sparse_span_header::flag_implied) == I::header_flag && head.reserved == 0,
          errc::corrupt_payload, [&] {
            return std::string(where() + "unknown flags, a flag of another index coding or "
                                         "non-zero reserved bits");
          });
}

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
  require_index_parameter<typename E::index_coding>(head, n, where);
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

/// One sparse_coo span of n elements (layout above): what the codec writes, validates and
/// decodes. Indices of an implied span are the ones the receiver regenerated (`regenerated`).
template <class E>
struct sparse_coo_span {
  using I = typename E::index_coding;
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
  /// Gathers the kept values x[idx[j]] of the k ascending indices idx as fp32 into kept[0, k);
  /// throws value_out_of_range (fail_unfit) at the first that value_unfit. Blocks of 256 loads
  /// come first, so that the loads of a block (scattered over the span) are all in flight at
  /// once, then their checks (10x faster than checking each as loaded, measured).
  template <class T, class Where>
  static void gather_kept(const T* x, const std::size_t* idx, std::size_t k, float value_scale,
                          float* kept, const Where& where) {
    constexpr std::size_t block = 256;
    for (std::size_t j0 = 0; j0 < k; j0 += block) {
      const std::size_t len = std::min(block, k - j0);
      float* v = kept + j0;
      for (std::size_t t = 0; t < len; ++t) {
        v[t] = to_float(x[idx[j0 + t]]);
      }
      for (std::size_t t = 0; t < len; ++t) {
        if (value_unfit(v[t], value_scale)) {
          fail_unfit(v[t], idx[j0 + t], where);
        }
      }
    }
  }

  /// Writes the span keeping the values kept[j] (gather_kept) at the k ascending span-local
  /// indices idx.
  static void write(std::byte* dst, const float* kept, std::size_t n, const std::size_t* idx,
                    std::size_t k, bool implied, float value_scale) {
    sparse_span_header::make(k, I::parameter(n, k), I::header_flag, implied, value_scale)
        .write(dst);
    std::byte* q = dst + sparse_span_header::bytes;
    if (!implied) {
      I::write(q, idx, k, n);
      q += I::bytes(n, k);
    }
    for (std::size_t j = 0; j < k; ++j) {
      E::store_value(q + j * value_bytes, kept[j]);
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
      I::validate(src + sparse_span_header::bytes, k, n, where);
    }
    const std::byte* values = values_of(src, n, head);
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

  /// Calls f(i) for the span-local index of every value of a validated span of n elements, in
  /// order.
  template <class F>
  static void for_each_index(const std::byte* src, std::size_t n, const std::size_t* regenerated,
                             F&& f) {
    const sparse_span_header head = sparse_span_header::read(src);
    const auto k = static_cast<std::size_t>(head.count);
    if (head.implied()) {
      std::for_each(regenerated, regenerated + k, f);
    } else {
      I::for_each(src + sparse_span_header::bytes, k, n,
                  [&](std::size_t, std::uint64_t i) { f(static_cast<std::size_t>(i)); });
    }
  }

  /// Writes a validated span into dst[0, n): assigned (zeros elsewhere) or added.
  template <class T>
  static void decode(const std::byte* src, std::size_t n, const std::size_t* regenerated,
                     decode_mode mode, T* dst) {
    const sparse_span_header head = sparse_span_header::read(src);
    const std::byte* values = values_of(src, n, head);
    if (mode == decode_mode::assign) {
      std::fill(dst, dst + n, from_float<T>(0.0f));
    }
    const rounding_barrier keep; // the scaled value stays rounded before it is added
    std::size_t j = 0;
    for_each_index(src, n, regenerated, [&](std::size_t i) {
      const float v = keep(E::load_value(values + j++ * value_bytes) * head.value_scale);
      dst[i] = from_float<T>(mode == decode_mode::add ? to_float(dst[i]) + v : v);
    });
  }

private:
  [[nodiscard]] static const std::byte* values_of(const std::byte* src, std::size_t n,
                                                  const sparse_span_header& head) {
    return src + sparse_span_header::bytes +
           (head.implied() ? 0 : I::bytes(n, static_cast<std::size_t>(head.count)));
  }
};
} // namespace detail

} // namespace gradcomp
