// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../compressor/common.hpp"
#include "../encoding/sparse_codes.hpp"
#include "codec_workspace.hpp"
#include "input_checks.hpp"
#include "sparse_selection.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

/// @file
/// The compressed spans of a composition compose<S, Q> (compressor/compose.hpp): S selects, the
/// kept values times S's value scale are quantized by Q over the kept values alone, and the span
/// carries S's indices and Q's packed codes (encoding/sparse_codes.hpp). One of the three span
/// coders codec<Scheme> orchestrates (detail/span_coder.hpp).

namespace gradcomp::detail {

template <class Scheme>
struct composite_span_coder {
  using C = typename Scheme::compressor_type;
  using sparse_codes_span = detail::sparse_codes_span<typename Scheme::encoding_type::index_coding>;
  const typename Scheme::encoding_type& encoding;

  [[nodiscard]] auto quantizer_coder(const C& c) const { return c.quantizer.coder(encoding.codes); }
  [[nodiscard]] std::size_t max_bytes(const C& c, std::size_t n) const {
    return sparse_codes_span::bytes(c.quantizer, quantizer_coder(c), n, c.max_selected(n));
  }
  /// Whether v is a scale the span can carry: the quantizer's (shared scales).
  [[nodiscard]] static bool valid_scale(const C& c, float v) { return c.quantizer.valid_scale(v); }

  /// Phase 1: S's selection of a finite span (select_finite), the kept values gathered (times S's
  /// value scale, beside their indices in the workspace) and Q's scales over them; returns the
  /// span's bytes.
  template <class Exec, class T, class Where>
  std::size_t plan(const Exec& exec, const C& c, const T* x, std::size_t n, const span_context& ctx,
                   codec_workspace& ws, const Where& name) const {
    const sparse_selection sel = select_finite(exec, c.sparsifier, x, n, ctx, ws.sparse, name);
    const std::size_t k = ws.sparse.indices.size();
    const std::size_t at = ws.add_selected();
    ws.kept.resize(ws.indices.size());
    float* kept = ws.kept.data() + at;
    for (std::size_t j = 0; j < k; ++j) {
      kept[j] = to_float(x[ws.sparse.indices[j]]) * sel.value_scale;
    }
    const std::uint32_t kept_bits =
        c.quantizer.scan(exec, kept, k, ws.add_scales(c.quantizer.num_scales(k)), ws.sums);
    require_kept_fit(kept_bits, name);
    return sparse_codes_span::bytes(c.quantizer, quantizer_coder(c), n, k);
  }
  /// value_out_of_range unless the kept values (times S's scale) are finite: their max |x| bits
  /// from Q's scan are below Inf's. Every backend's check.
  template <class Where>
  static void require_kept_fit(std::uint32_t kept_bits, const Where& name) {
    require(kept_bits < inf_abs_bits, errc::value_out_of_range, [&] {
      return std::string(name() + ": a kept value times the sparsifier's scale overflows");
    });
  }

  template <class Exec, class T>
  void write(const Exec& exec, const C& c, const T*, std::size_t n, const span_context& ctx,
             codec_workspace& ws, std::size_t s, std::byte* dst) const {
    sparse_codes_span::write(exec, c.quantizer, quantizer_coder(c), ws.span_indices(s),
                             ws.kept.data() + ws.index_offsets[s], ws.span_index_count(s), n,
                             ctx.global_begin, ws.span_scales(s), ctx.rounding(), dst);
  }

  /// Validates the span; Q's scales go to the workspace.
  template <class Exec, class Where>
  void validate(const Exec& exec, const C& c, const std::byte* src, std::size_t bytes,
                std::size_t n, const span_context&, codec_workspace& ws, std::size_t s,
                const Where& where, std::uint32_t* max_abs_bits) const {
    // room for the most scales any k <= n needs; trimmed to the count once k is known
    const std::size_t first = ws.scales.size();
    const std::size_t k =
        sparse_codes_span::validate(exec, c, quantizer_coder(c), src, bytes, n, s,
                                    ws.add_scales(c.quantizer.num_scales(n)), where, max_abs_bits);
    ws.scales.resize(first + c.quantizer.num_scales(k));
  }

  template <class Exec, class T>
  void decode(const Exec& exec, const C& c, const std::byte* src, std::size_t n,
              codec_workspace& ws, std::size_t s, decode_mode mode, T* dst) const {
    ws.kept.resize(n);
    sparse_codes_span::decode(exec, c.quantizer, quantizer_coder(c), src, n, ws.span_scales(s),
                              mode, ws.kept.data(), dst);
  }

  /// Marks in sent[0, n) the elements a validated span carries a value for: S's indices.
  void mark_sent(const std::byte* src, std::size_t n, const codec_workspace&, std::size_t,
                 std::uint8_t* sent) const {
    std::fill(sent, sent + n, std::uint8_t{0});
    sparse_codes_span::for_each_index(src, n, [sent](std::size_t i) { sent[i] = 1; });
  }
};

} // namespace gradcomp::detail
