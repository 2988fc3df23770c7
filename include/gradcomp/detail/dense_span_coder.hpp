// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../compressor/common.hpp"
#include "../encoding/packed_span.hpp"
#include "codec_workspace.hpp"
#include "dispatch.hpp"
#include "input_checks.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

/// @file
/// The compressed spans of a quantizer (dense payload): its scales reduced over the span, then
/// one fixed-width code per element (encoding/packed_span.hpp). One of the three span coders
/// codec<Scheme> orchestrates (detail/span_coder.hpp lists their members).

namespace gradcomp::detail {

template <class Scheme>
struct dense_span_coder {
  using C = typename Scheme::compressor_type;
  const typename Scheme::encoding_type& encoding;

  [[nodiscard]] std::size_t max_bytes(const C& c, std::size_t n) const {
    return packed_span::bytes(c, c.coder(encoding), n);
  }
  /// Whether v is a scale the span's compressor can carry (shared scales).
  [[nodiscard]] static bool valid_scale(const C& c, float v) { return c.valid_scale(v); }

  /// Phase 1: the scales (and max |x|, which must be finite and fit the codes); returns the
  /// span's bytes.
  template <class Exec, class T, class Where>
  std::size_t plan(const Exec& exec, const C& c, const T* x, std::size_t n, const span_context& ctx,
                   codec_workspace& ws, const Where& name) const {
    float* scales = ws.add_scales(c.num_scales(n));
    const std::uint32_t max_bits = c.scan(exec, x, n, scales, ws.sums);
    require_finite(max_bits, x, n, ctx.global_begin, name);
    using coder_type = decltype(c.coder(encoding));
    if constexpr (requires { coder_type::overflow_abs_bits; }) {
      require_in_range(max_bits, coder_type::overflow_abs_bits, x, name);
    }
    return max_bytes(c, n);
  }

  /// Phase 2: writes span s with the scales phase 1 (or the caller) left in the workspace.
  template <class Exec, class T>
  void write(const Exec& exec, const C& c, const T* x, std::size_t n, const span_context& ctx,
             codec_workspace& ws, std::size_t s, std::byte* dst) const {
    packed_span::write(exec, c, c.coder(encoding), x, n, ctx.global_begin, ws.span_scales(s),
                       ctx.rounding(), dst, &ws.hashed);
  }

  /// Validates the span's `bytes` bytes; its scales go to the workspace. With max_abs_bits,
  /// stores there the largest |decoded value| (fp32 bits).
  template <class Exec, class Where>
  void validate(const Exec& exec, const C& c, const std::byte* src, std::size_t bytes,
                std::size_t n, const span_context&, codec_workspace& ws, std::size_t s,
                const Where&, std::uint32_t* max_abs_bits) const {
    packed_span::validate(exec, c, c.coder(encoding), src, bytes, n, s,
                          ws.add_scales(c.num_scales(n)), max_abs_bits, &ws.hashed);
  }

  template <class Exec, class T>
  void decode(const Exec& exec, const C& c, const std::byte* src, std::size_t n,
              codec_workspace& ws, std::size_t s, decode_mode mode, T* dst) const {
    packed_span::decode(exec, c, c.coder(encoding), src, n, ws.span_scales(s), mode, dst);
  }

  /// Marks in sent[0, n) the elements a validated span carries a value for: all of them.
  void mark_sent(const std::byte*, std::size_t n, const codec_workspace&, std::size_t,
                 std::uint8_t* sent) const {
    std::fill(sent, sent + n, std::uint8_t{1});
  }
};

} // namespace gradcomp::detail
