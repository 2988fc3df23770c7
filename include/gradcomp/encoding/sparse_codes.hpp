// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../detail/bits.hpp"
#include "../error.hpp"
#include "../payload.hpp"
#include "packed_span.hpp"
#include "sparse_coo.hpp"
#include "sparse_span_header.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

/// @file
/// The encoding of compositions (compose<S, Q>): the sparsifier's indices, then the kept values
/// as the quantizer's fixed-width codes. A span of n elements with k kept is laid out as
///     [16-byte sparse span header (encoding/sparse_span_header.hpp): k, the index coding's
///      parameter, flags (the index coding's), scale 1.0]
///     [the k indices, strictly increasing, in the index coding I][Q's packed span of k values]
/// with I fixed_width_indices or elias_fano_indices (encoding/index_coding.hpp), and Q's packed
/// span that of CodeEncoding (encoding/packed_span.hpp: its scales, then its codes).
/// Bytes = 16 + I::bytes(n, k) + Q's bytes for k.

namespace gradcomp {

namespace detail {
template <class CodeEncoding, class P>
inline constexpr bool sparse_codes_accept = false;
template <class CodeEncoding, class P>
inline constexpr bool sparse_codes_accept<CodeEncoding, sparse_quantized_payload<P>> =
    CodeEncoding::template accepts<P>;
} // namespace detail

template <class CodeEncoding, class I = fixed_width_indices>
struct sparse_codes {
  static_assert(detail::is_index_coding<I>,
                "sparse_codes<E, I>: I must be fixed_width_indices or elias_fano_indices");
  static constexpr bool elias_fano = std::is_same_v<I, elias_fano_indices>;
  static constexpr encoding_id id =
      elias_fano ? encoding_id::sparse_codes_ef : encoding_id::sparse_codes;
  static constexpr std::string_view name = elias_fano ? "sparse_codes_ef" : "sparse_codes";
  using code_encoding = CodeEncoding;
  using index_coding = I;
  template <class P>
  static constexpr bool accepts = detail::sparse_codes_accept<CodeEncoding, P>;

  static constexpr std::size_t span_header_bytes = detail::sparse_span_header::bytes;
  [[nodiscard]] static constexpr unsigned index_bytes(std::size_t n) noexcept {
    return detail::sparse_index_bytes(n);
  }
  CodeEncoding codes{};
  friend constexpr bool operator==(const sparse_codes&, const sparse_codes&) = default;
};

namespace detail {

/// One composite span: S's indices in the index coding I, then Q's packed span of the kept
/// values (layout above).
template <class I>
struct sparse_codes_span {
  static constexpr std::size_t header = sparse_span_header::bytes;

  template <class Q, class Coder>
  [[nodiscard]] static std::size_t bytes(const Q& q, const Coder& coder, std::size_t n,
                                         std::size_t k) {
    return header + I::bytes(n, k) + packed_span::bytes(q, coder, k);
  }

  /// Writes the span: `indices` (k, ascending, span-local) and the kept values already scaled
  /// by S's value scale; Q's `scales` were computed over those values.
  template <class Exec, class Q, class Coder>
  static void write(const Exec& exec, const Q& q, const Coder& coder, const std::size_t* indices,
                    const float* kept, std::size_t k, std::size_t n, std::uint64_t global_begin,
                    const float* scales, const random_stream& rs, std::byte* dst) {
    sparse_span_header::make(k, I::parameter(n, k), I::header_flag, false, 1.0f).write(dst);
    I::write(dst + header, indices, k, n);
    packed_span::write(exec, q, coder, kept, k, global_begin, scales, rs,
                       dst + header + I::bytes(n, k));
  }

  /// The checks of a span's 16-byte header against its size, `bytes_in` bytes for n elements:
  /// the count S keeps, the index coding's parameter and flag, zero reserved fields and implied
  /// bit, a value scale of 1, the exact size; returns
  /// k. (The CUDA backend runs them on the headers it copies back.)
  template <class C, class Coder, class Where>
  static std::size_t check_header(const C& c, const Coder& coder, const std::byte* src,
                                  std::size_t bytes_in, std::size_t n, const Where& where) {
    require(bytes_in >= header, errc::corrupt_payload,
            [&] { return std::string(where() + "composite span shorter than its header"); });
    const sparse_span_header head = sparse_span_header::read(src);
    const std::uint64_t k = head.count;
    require(k <= c.max_selected(n), errc::corrupt_payload, [&] {
      return std::string(where() + "count " + std::to_string(k) +
                         " exceeds what the sparsifier keeps");
    });
    if constexpr (keeps_fixed_count<typename C::sparsifier_type>) {
      require(k == c.sparsifier.count(n), errc::corrupt_payload, [&] {
        return std::string(where() + "count " + std::to_string(k) + ", the sparsifier keeps " +
                           std::to_string(c.sparsifier.count(n)));
      });
    }
    require_index_parameter<I>(head, n, where);
    require(!head.implied() && float_bits(head.value_scale) == float_bits(1.0f),
            errc::corrupt_payload, [&] {
              return std::string(where() + "implied flag set or value scale not 1 in a composite "
                                           "span");
            });
    require(bytes_in == bytes(c.quantizer, coder, n, k), errc::corrupt_payload, [&] {
      return std::string(where() + std::to_string(bytes_in) + " payload bytes, the format needs " +
                         std::to_string(bytes(c.quantizer, coder, n, k)));
    });
    return static_cast<std::size_t>(k);
  }

  /// Validates a span of `bytes` bytes for n elements; returns k and copies Q's scales to
  /// `scales` (room for q.num_scales(n)). With `max_abs_bits`, also stores there the largest
  /// |decoded value| (fp32 bits).
  template <class Exec, class C, class Coder, class Where>
  static std::size_t validate(const Exec& exec, const C& c, const Coder& coder,
                              const std::byte* src, std::size_t bytes_in, std::size_t n,
                              std::size_t span, float* scales, const Where& where,
                              std::uint32_t* max_abs_bits = nullptr) {
    const std::size_t k = check_header(c, coder, src, bytes_in, n, where);
    I::validate(src + header, k, n, where);
    const std::size_t codes_at = header + I::bytes(n, k);
    packed_span::validate(exec, c.quantizer, coder, src + codes_at, bytes_in - codes_at, k, span,
                          scales, max_abs_bits);
    return k;
  }

  /// Decodes a validated span: Q's values into `kept` (room for k), then scattered into out
  /// (assigned, with zeros elsewhere, or added).
  template <class Exec, class Q, class Coder, class T>
  static void decode(const Exec& exec, const Q& q, const Coder& coder, const std::byte* src,
                     std::size_t n, const float* scales, decode_mode mode, float* kept, T* out) {
    const auto k = static_cast<std::size_t>(sparse_span_header::read(src).count);
    packed_span::decode(exec, q, coder, src + header + I::bytes(n, k), k, scales,
                        decode_mode::assign, kept);
    if (mode == decode_mode::assign) {
      std::fill(out, out + n, from_float<T>(0.0f));
    }
    std::size_t j = 0;
    for_each_index(src, n, [&](std::size_t i) {
      out[i] = from_float<T>(mode == decode_mode::add ? to_float(out[i]) + kept[j] : kept[j]);
      ++j;
    });
  }

  /// Calls f(i) for the span-local index of every kept value of a validated span, in order.
  template <class F>
  static void for_each_index(const std::byte* src, std::size_t n, F&& f) {
    const auto k = static_cast<std::size_t>(sparse_span_header::read(src).count);
    I::for_each(src + header, k, n,
                [&](std::size_t, std::uint64_t i) { f(static_cast<std::size_t>(i)); });
  }
};

} // namespace detail
} // namespace gradcomp
