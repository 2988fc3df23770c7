// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "compressor/selection_rule.hpp"
#include "concepts.hpp"
#include "encoding/code_encodings.hpp"
#include "encoding/sparse_codes.hpp"
#include "encoding/sparse_coo.hpp"
#include "granularity/flat_span.hpp"
#include "granularity/span_plan.hpp"
#include "payload.hpp"

#include <type_traits>

/// @file
/// scheme<Compressor, Granularity, Encoding>: the compile-time composition of what is kept, which
/// spans are compressed independently, and how it looks on the wire. Runtime parameters (ratio,
/// levels, threshold, bucket size, per-layer rules) are values, so one binary can sweep them.

namespace gradcomp {

namespace detail {
template <class Payload>
struct default_encoding_for;
template <>
struct default_encoding_for<sparse_payload> {
  using type = sparse_coo<float>;
};
template <>
struct default_encoding_for<ternary_payload> {
  using type = ternary_2bit;
};
template <>
struct default_encoding_for<levels_payload> {
  using type = qsgd_levels;
};
template <>
struct default_encoding_for<sign_payload> {
  using type = sign_bits;
};
template <>
struct default_encoding_for<natural_payload> {
  using type = natural_codes<9>;
};
template <>
struct default_encoding_for<dense_payload> {
  using type = dense<float>;
};
template <class P>
struct default_encoding_for<sparse_quantized_payload<P>> {
  using type = sparse_codes<typename default_encoding_for<P>::type>;
};
template <class C>
struct default_encoding {
  using type = typename default_encoding_for<typename C::payload_kind>::type;
};
template <class C>
requires requires {
  typename C::target_type;
}
struct default_encoding<C> {
  using type = dense<typename C::target_type>;
};
} // namespace detail

/// The natural encoding of a compressor's payload.
template <class C>
using default_encoding_t = typename detail::default_encoding<C>::type;

template <class Compressor, class Granularity = flat_span,
          class Encoding = default_encoding_t<Compressor>>
struct scheme {
  static_assert(compressor<Compressor>,
                "gradcomp::scheme<C, G, E>: C does not model gradcomp::compressor");
  static_assert(granularity<Granularity>,
                "gradcomp::scheme<C, G, E>: G does not model gradcomp::granularity "
                "(use flat_span, layer_span or bucket_span)");
  static_assert(encoding<Encoding>,
                "gradcomp::scheme<C, G, E>: E does not model gradcomp::encoding");
  static_assert(Encoding::template accepts<typename Compressor::payload_kind>,
                "gradcomp::scheme<C, G, E>: encoding E cannot carry the payload kind of "
                "compressor C (e.g. TernGrad codes need ternary_2bit, not sparse_coo)");
  static_assert(!std::is_same_v<typename Compressor::payload_kind, sparse_payload> ||
                    sparsifier<Compressor>,
                "gradcomp::scheme<C, G, E>: C has a sparse payload but does not model "
                "gradcomp::sparsifier (rule(ctx), indices_implied(), value_scale(n, k), "
                "max_selected(n), needs_span_max: compressor/selection_rule.hpp)");

  using compressor_type = Compressor;
  using granularity_type = Granularity;
  using encoding_type = Encoding;
  static constexpr bool is_sparse =
      std::is_same_v<typename Compressor::payload_kind, sparse_payload>;
  /// A sparsifier followed by a quantizer (compressor/compose.hpp).
  static constexpr bool is_composite = requires { typename Compressor::quantizer_type; };

  Compressor compressor{};
  Granularity granularity{};
  Encoding encoding{};
  layer_rules rules{};
};

/// The wire ids a codec writes into every message header (and a cluster's envelope compares).
struct scheme_ids {
  compressor_id compressor{};
  encoding_id encoding{};
  granularity_id granularity{};
  friend constexpr bool operator==(scheme_ids, scheme_ids) = default;
};

template <class Scheme>
class codec;

/// The codec the framework (worker, master, error feedback, clusters) holds for a scheme type:
/// codec<Scheme>, or a type-erased codec for a scheme chosen at run time (runtime_scheme in
/// runtime/any_codec.hpp).
template <class Scheme>
struct codec_for {
  using type = codec<Scheme>;
};
template <class Scheme>
using codec_for_t = typename codec_for<Scheme>::type;

} // namespace gradcomp
