// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../codec.hpp"
#include "../../compressor/identity.hpp"
#include "codes.cuh"
#include "launch.cuh"
#include "runtime.cuh"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

/// @file
/// The layout of a fixed-width code scheme's messages on the device (dense_engine): for one
/// gradient value type, every span's payload offset and size, the directory, and the spans
/// grouped by code width with their tiles (raw spans in one group per value type), uploaded once.

namespace gradcomp::detail::cuda {

/// A host vector's copy in device memory (at least one element).
template <class T>
device_array<T> upload_vector(const std::vector<T>& v) {
  device_array<T> d(std::max<std::size_t>(v.size(), 1));
  if (!v.empty()) {
    cuda_check(cudaMemcpy(d.data(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice),
               "upload");
  }
  return d;
}

/// The spans of one code width (or the raw spans) with their tiles, on the device.
template <class Coder>
struct code_group {
  using coder_type = Coder;
  unsigned bits = 0;
  device_array<code_span<Coder>> spans;
  device_array<code_tile> tiles;
  std::uint64_t tile_count = 0;
};

/// The message layout for one gradient value type (raw spans carry values of that type).
template <class Scheme>
struct dense_message_plan {
  using compressor_type = typename Scheme::compressor_type;
  using span_coder = decltype(std::declval<const compressor_type&>().coder(
      std::declval<const typename Scheme::encoding_type&>()));

  std::vector<std::size_t> offset; ///< payload offset of every span
  std::vector<std::size_t> bytes;  ///< payload bytes of every span
  std::size_t total_bytes = 0;
  std::vector<std::byte> directory;
  std::vector<code_group<span_coder>> groups; ///< compressed spans, one group per width
  code_group<cast_coder<float>> raw_f32;
  code_group<cast_coder<half>> raw_f16;
  code_group<cast_coder<bfloat16>> raw_bf16;
  device_array<std::uint64_t> scale_payload;

  static dense_message_plan build(const codec<Scheme>& owner, value_type_id vt,
                                  const std::vector<std::size_t>& span_scale_begin) {
    const auto& plan = owner.spans();
    const auto& enc = owner.scheme().encoding;
    dense_message_plan mp;
    const std::size_t S = plan.size();
    std::size_t offset = wire_header_bytes + S * wire_directory_entry_bytes;
    mp.directory.resize(S * wire_directory_entry_bytes);
    std::vector<std::uint64_t> scale_payload;
    for (std::size_t s = 0; s < S; ++s) {
      const compressor_type& c = owner.span_compressor(s);
      const std::size_t n = plan[s].size;
      const std::size_t bytes =
          plan[s].compressed ? packed_span::bytes(c, c.coder(enc), n) : n * value_size(vt);
      mp.offset.push_back(offset);
      mp.bytes.push_back(bytes);
      write_directory_entry(mp.directory.data() + s * wire_directory_entry_bytes, n, bytes,
                            plan[s].compressed ? span_mode_compressed : span_mode_raw);
      if (plan[s].compressed && c.num_scales(n) > 0) {
        scale_payload.push_back(offset);
      }
      offset += bytes;
    }
    mp.total_bytes = offset;
    mp.scale_payload = upload_vector(scale_payload);
    // compressed spans, grouped by code width
    std::vector<unsigned> widths;
    for (std::size_t s = 0; s < S; ++s) {
      if (plan[s].compressed && plan[s].size > 0) {
        const unsigned b = owner.span_compressor(s).coder(enc).bits();
        if (std::find(widths.begin(), widths.end(), b) == widths.end()) {
          widths.push_back(b);
        }
      }
    }
    for (unsigned b : widths) {
      mp.groups.push_back(
          build_group<span_coder>(owner, span_scale_begin, mp, b, true, [&](std::size_t s) {
            return owner.span_compressor(s).coder(enc);
          }));
    }
    mp.raw_f32 = build_group<cast_coder<float>>(owner, span_scale_begin, mp, 32, false,
                                                [](std::size_t) { return cast_coder<float>{}; });
    mp.raw_f16 = build_group<cast_coder<half>>(owner, span_scale_begin, mp, 16, false,
                                               [](std::size_t) { return cast_coder<half>{}; });
    mp.raw_bf16 = build_group<cast_coder<bfloat16>>(
        owner, span_scale_begin, mp, 16, false, [](std::size_t) { return cast_coder<bfloat16>{}; });
    return mp;
  }

  /// The spans of one code width (compressed = true) or the raw spans (false), and their tiles.
  template <class Coder, class MakeCoder>
  static code_group<Coder>
  build_group(const codec<Scheme>& owner, const std::vector<std::size_t>& span_scale_begin,
              const dense_message_plan& mp, unsigned bits, bool compressed, MakeCoder make_coder) {
    const auto& plan = owner.spans();
    const auto& enc = owner.scheme().encoding;
    std::vector<code_span<Coder>> spans;
    std::vector<code_tile> tiles;
    for (std::size_t s = 0; s < plan.size(); ++s) {
      if (plan[s].compressed != compressed || plan[s].size == 0) {
        continue;
      }
      const compressor_type& c = owner.span_compressor(s);
      if (compressed && c.coder(enc).bits() != bits) {
        continue;
      }
      code_span<Coder> sp;
      const std::size_t n = plan[s].size;
      const std::size_t ns = compressed ? c.num_scales(n) : 0;
      sp.global_begin = plan[s].begin;
      sp.n = n;
      sp.payload = mp.offset[s] + 4 * ns;
      if constexpr (has_sign_plane<Coder>) {
        sp.sign_payload = sp.payload + packed_bytes(n, bits - 1);
      }
      sp.scale_begin = span_scale_begin[s];
      sp.group = compressed ? c.scale_group(n) : 1;
      sp.has_scales = ns > 0 ? 1u : 0u;
      sp.coder = make_coder(s);
      for (std::size_t base = 0; base < n; base += tile_elements) {
        tiles.push_back({static_cast<std::uint32_t>(spans.size()),
                         static_cast<std::uint32_t>(std::min<std::size_t>(tile_elements, n - base)),
                         base});
      }
      spans.push_back(sp);
    }
    code_group<Coder> g;
    g.bits = bits;
    g.tile_count = tiles.size();
    g.spans = upload_vector(spans);
    g.tiles = upload_vector(tiles);
    return g;
  }
};

} // namespace gradcomp::detail::cuda
