// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../granularity/span_plan.hpp"
#include "codes.cuh"
#include "launch.cuh"
#include "runtime.cuh"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

/// @file
/// Where a composition's quantizer Q writes, on the device (composite_engine): for this call's
/// kept counts and span offsets, the first scale of every span, the payload offset of its scales,
/// and its code span with the tiles of 2048 kept values, built on the host and uploaded on a
/// stream. The kept values of span s sit at its global begin + rank (where the CPU keys Q's
/// rounding), so the code kernels of the dense path run on them unchanged.

namespace gradcomp::detail::cuda {

/// Uploads a host vector on `st`, growing dev (contents lost) when it is too small.
template <class V>
void upload_async(const std::vector<V>& host, device_array<V>& dev, cudaStream_t st) {
  dev.reserve(std::max<std::size_t>(host.size(), 1));
  if (!host.empty()) {
    cuda_check(cudaMemcpyAsync(dev.data(), host.data(), host.size() * sizeof(V),
                               cudaMemcpyHostToDevice, st),
               "upload");
  }
}

/// Uploads the first `count` elements of a host array on `st` (dev holds at least count).
template <class V, class Memory>
void upload_async(const owned_array<V, Memory>& host, device_array<V>& dev, std::size_t count,
                  cudaStream_t st) {
  if (count > 0) {
    cuda_check(
        cudaMemcpyAsync(dev.data(), host.data(), count * sizeof(V), cudaMemcpyHostToDevice, st),
        "upload");
  }
}

template <class Coder>
struct kept_code_tables {
  std::vector<std::size_t> span_scale_begin; ///< span s's scales are [begin[s], begin[s + 1])
  std::size_t total_scales = 0;
  std::vector<std::uint64_t> host_scale_begin, host_scale_payload; ///< spans with scales
  std::vector<code_span<Coder>> host_code_spans;                   ///< spans with kept values
  std::vector<code_tile> host_tiles;
  device_array<std::uint64_t> scale_begin, scale_payload;
  device_array<code_span<Coder>> code_spans;
  device_array<code_tile> tiles;

  /// Builds the tables for `counts[s]` kept values of span s at payload offset `offsets[s]`
  /// (raw(s): a span sent raw, no codes), Q = quantizer(s) with the code encoding `codes` and
  /// `bits`-bit codes, then uploads them on st. payload_of(s, k) is where span s's scales begin
  /// in the message.
  template <class Raw, class Quantizer, class Codes, class PayloadOf>
  void build(const std::vector<span_desc>& plan, const std::vector<std::size_t>& counts,
             const Raw& raw, const Quantizer& quantizer, const Codes& codes, unsigned bits,
             const PayloadOf& payload_of, cudaStream_t st) {
    const std::size_t S = plan.size();
    span_scale_begin.assign(S + 1, 0);
    host_scale_begin.clear();
    host_scale_payload.clear();
    host_code_spans.clear();
    host_tiles.clear();
    for (std::size_t s = 0; s < S; ++s) {
      if (raw(s)) {
        span_scale_begin[s + 1] = span_scale_begin[s];
        continue;
      }
      const auto& q = quantizer(s);
      const std::size_t k = counts[s];
      const std::size_t ns = q.num_scales(k);
      const std::uint64_t payload = payload_of(s, k);
      span_scale_begin[s + 1] = span_scale_begin[s] + ns;
      if (ns > 0) {
        host_scale_begin.push_back(span_scale_begin[s]);
        host_scale_payload.push_back(payload);
      }
      if (k > 0) {
        add_span(q, codes, bits, plan[s].begin, k, payload, ns, span_scale_begin[s]);
      }
    }
    total_scales = span_scale_begin[S];
    upload_async(host_scale_begin, scale_begin, st);
    upload_async(host_scale_payload, scale_payload, st);
    upload_async(host_code_spans, code_spans, st);
    upload_async(host_tiles, tiles, st);
  }

  /// Decode: reads the scales of msg into `scales` and checks them and the `bits`-bit codes on
  /// the device (the first bad scale, code and padding recorded in found[0], [1], [2]).
  void validate(cudaStream_t st, const std::uint8_t* msg, unsigned bits, float* scales,
                unsigned long long* found, std::size_t& launches) const {
    if (total_scales > 0) {
      read_scales<<<grid_for(total_scales, 256), 256, 0, st>>>(
          scale_begin.data(), scale_payload.data(),
          static_cast<std::uint32_t>(host_scale_begin.size()), total_scales, msg, scales, found);
      ++launches;
    }
    if (!host_tiles.empty()) {
      validate_tiles<Coder, has_sign_plane<Coder>>
          <<<grid_for(host_tiles.size(), 1), tile_threads, 0, st>>>(
              code_spans.data(), tiles.data(), host_tiles.size(), msg, bits, found + 1, found + 2);
      ++launches;
    }
  }

private:
  template <class Q, class Codes>
  void add_span(const Q& q, const Codes& codes, unsigned bits, std::uint64_t global_begin,
                std::size_t k, std::uint64_t payload, std::size_t ns, std::size_t first_scale) {
    code_span<Coder> sp;
    sp.coder = q.coder(codes);
    sp.global_begin = global_begin;
    sp.n = k;
    sp.payload = payload + 4 * ns;
    if constexpr (has_sign_plane<Coder>) {
      sp.sign_payload = sp.payload + packed_bytes(k, bits - 1);
    }
    sp.scale_begin = first_scale;
    sp.group = q.scale_group(k);
    sp.has_scales = ns > 0 ? 1u : 0u;
    for (std::size_t base = 0; base < k; base += tile_elements) {
      host_tiles.push_back(
          {static_cast<std::uint32_t>(host_code_spans.size()),
           static_cast<std::uint32_t>(std::min<std::size_t>(tile_elements, k - base)), base});
    }
    host_code_spans.push_back(sp);
  }
};

} // namespace gradcomp::detail::cuda
