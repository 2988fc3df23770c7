// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../compressor/common.hpp"
#include "../encoding/sparse_coo.hpp"
#include "../encoding/sparse_span_header.hpp"
#include "codec_workspace.hpp"
#include "sparse_selection.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

/// @file
/// The compressed spans of a sparsifier (sparse payload): the sparsifier's selection, then its
/// indices and values (encoding/sparse_coo.hpp). Indices implied by a shared seed are not sent:
/// the decoder regenerates them while validating. One of the three span coders codec<Scheme>
/// orchestrates (detail/span_coder.hpp).

namespace gradcomp::detail {

template <class Scheme>
struct sparse_span_coder {
  using C = typename Scheme::compressor_type;
  using encoding_type = typename Scheme::encoding_type;
  using span = sparse_coo_span<encoding_type>;
  const encoding_type& encoding;

  [[nodiscard]] std::size_t max_bytes(const C& c, std::size_t n) const {
    return encoding_type::bytes(n, c.max_selected(n), c.indices_implied());
  }

  /// Sparse spans carry no scales: any shared scale is invalid.
  [[nodiscard]] static bool valid_scale(const C&, float) noexcept { return false; }

  /// Phase 1: the selection of a finite span, its kept values gathered (and checked) beside
  /// their indices in the workspace; returns the span's bytes.
  template <class Exec, class T, class Where>
  std::size_t plan(const Exec& exec, const C& c, const T* x, std::size_t n, const span_context& ctx,
                   codec_workspace& ws, const Where& name) const {
    const sparse_selection sel = select_finite(exec, c, x, n, ctx, ws.sparse, name);
    const std::size_t k = ws.sparse.indices.size();
    ws.selections[ws.open_span()] = sel;
    const std::size_t at = ws.add_selected();
    ws.kept.resize(ws.indices.size());
    span::gather_kept(x, ws.indices.data() + at, k, sel.value_scale, ws.kept.data() + at, name);
    return encoding_type::bytes(n, k, sel.indices_implied);
  }

  template <class Exec, class T>
  void write(const Exec&, const C&, const T*, std::size_t n, const span_context&,
             codec_workspace& ws, std::size_t s, std::byte* dst) const {
    span::write(dst, ws.kept.data() + ws.index_offsets[s], n, ws.span_indices(s),
                ws.span_index_count(s), ws.selections[s].indices_implied,
                ws.selections[s].value_scale);
  }

  /// Validates the span against the sparsifier; regenerates implied indices from ctx (the
  /// message's seed and stream word) into the workspace.
  template <class Exec, class Where>
  void validate(const Exec& exec, const C& c, const std::byte* src, std::size_t bytes,
                std::size_t n, const span_context& ctx, codec_workspace& ws, std::size_t,
                const Where& where, std::uint32_t* max_abs_bits) const {
    const std::uint32_t max_bits = span::validate(c, src, bytes, n, where);
    if (sparse_span_header::read(src).implied()) {
      (void)select_sparse(exec, c, static_cast<const float*>(nullptr), n, ctx, ws.sparse);
      (void)ws.add_selected();
    }
    if (max_abs_bits != nullptr) {
      *max_abs_bits = max_bits;
    }
  }

  template <class Exec, class T>
  void decode(const Exec&, const C&, const std::byte* src, std::size_t n, codec_workspace& ws,
              std::size_t s, decode_mode mode, T* dst) const {
    span::decode(src, n, ws.span_indices(s), mode, dst);
  }

  /// Marks in sent[0, n) the elements a validated span carries a value for: its indices.
  void mark_sent(const std::byte* src, std::size_t n, const codec_workspace& ws, std::size_t s,
                 std::uint8_t* sent) const {
    std::fill(sent, sent + n, std::uint8_t{0});
    span::for_each_index(src, n, ws.span_indices(s), [sent](std::size_t i) { sent[i] = 1; });
  }
};

} // namespace gradcomp::detail
