// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "composite_span_coder.hpp"
#include "dense_span_coder.hpp"
#include "sparse_span_coder.hpp"

#include <type_traits>

/// @file
/// The span coder of a scheme: what codec<Scheme> calls for each compressed span, chosen once by
/// the scheme's payload kind. A span coder is built over the scheme's encoding and has, for the
/// span's compressor c, its n elements and the call's workspace (detail/codec_workspace.hpp):
///     max_bytes(c, n)                                       bytes for any input
///     plan(exec, c, x, n, ctx, ws, name) -> bytes           phase 1 of encode: scan, select, scale
///     write(exec, c, x, n, ctx, ws, s, dst)                 phase 2: the span's bytes
///     validate(exec, c, src, bytes, n, ctx, ws, s, where, max_abs_bits)
///     decode(exec, c, src, n, ws, s, mode, dst)             of a validated span
///     mark_sent(src, n, ws, s, sent)                        the elements it carries values for
///     valid_scale(c, v)                                     a scale the workers may share
/// Raw spans
/// (identity rules) are the codec's own: they are the same for every scheme.

namespace gradcomp::detail {

template <class Scheme>
using span_coder_for =
    std::conditional_t<Scheme::is_sparse, sparse_span_coder<Scheme>,
                       std::conditional_t<Scheme::is_composite, composite_span_coder<Scheme>,
                                          dense_span_coder<Scheme>>>;

} // namespace gradcomp::detail
