// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../codec.hpp"
#include "../../compressor/identity.hpp"
#include "../../core/float16.hpp"
#include "kernels.cuh"
#include "runtime.cuh"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

/// @file
/// raw_span_group: the spans a per-layer identity rule sends raw in a sparse or composite
/// message (the gradient's own values, little-endian, in its value type V), as one group of
/// cast_coder<V> code spans for the code kernels of codes.cuh: written, checked finite and
/// decoded in one launch each, whatever their number. Planned per message, since their payload
/// offsets follow compressed spans whose sizes change from call to call.

namespace gradcomp::detail::cuda {

/// Calls f with a value of the type a message's values have (float, half or bfloat16).
template <class F>
void with_value_type(value_type_id vt, F&& f) {
  switch (vt) {
  case value_type_id::f32:
    f(float{});
    break;
  case value_type_id::f16:
    f(half{});
    break;
  case value_type_id::bf16:
    f(bfloat16{});
    break;
  }
}

/// The CPU decoder's size check of raw span s (values of the message's value type).
template <class Scheme>
void check_raw_span(const codec<Scheme>& host, std::size_t s, const message_info& info) {
  const std::size_t need = host.spans()[s].size * value_size(info.value_type);
  require(info.spans[s].bytes == need, errc::corrupt_payload,
          host.span_name(s) + ": raw span of " + std::to_string(info.spans[s].bytes) +
              " bytes, needs " + std::to_string(need));
}
/// The CPU decoder's error for a non-finite raw value (first_bad: its global index, or ~0 when
/// there is none).
template <class Scheme>
void check_raw_values(const codec<Scheme>& host, unsigned long long first_bad) {
  if (first_bad == ~0ull) {
    return;
  }
  const auto& plan = host.spans();
  const std::size_t s =
      last_span_at(plan.size(), first_bad, [&](std::size_t i) { return plan[i].begin; });
  fail(errc::corrupt_payload, host.span_name(s) + ": raw value " +
                                  std::to_string(first_bad - plan[s].begin) + " is not finite");
}

/// sent[g] = 1 for every element of the tiles' spans, one block per tile.
template <class Coder>
__global__ void __launch_bounds__(tile_threads)
    mark_tiles(const code_span<Coder>* __restrict__ spans, const code_tile* __restrict__ tiles,
               std::uint64_t tile_count, std::uint8_t* __restrict__ sent) {
  for (std::uint64_t t = blockIdx.x; t < tile_count; t += gridDim.x) {
    const code_tile tile = tiles[t];
    std::uint8_t* d = sent + spans[tile.span].global_begin + tile.base;
    for (unsigned j = threadIdx.x; j < tile.len; j += blockDim.x) {
      d[j] = 1;
    }
  }
}

class raw_span_group {
public:
  /// Starts a new plan.
  void clear() { spans_.clear(); }
  /// A raw span: n elements from global_begin, its values at byte `payload` of the message.
  void add(std::uint64_t global_begin, std::uint64_t n, std::uint64_t payload) {
    if (n > 0) {
      spans_.push_back({global_begin, n, payload});
    }
  }
  [[nodiscard]] bool empty() const noexcept { return spans_.empty(); }

  /// Writes the raw spans of gradient x (values of type V) into the message.
  template <class V>
  void encode(cudaStream_t st, const V* x, std::uint8_t* msg, std::size_t& launches) {
    if (empty()) {
      return;
    }
    typed<V>& g = upload<V>(st);
    encode_tiles<cast_coder<V>, false, V><<<grid_for(tiles_.size(), 1), tile_threads, 0, st>>>(
        x, g.spans.data(), g.tiles.data(), tiles_.size(), nullptr, random_stream{}, bits<V>, msg);
    launches += 3;
  }
  /// Checks the raw values (of type V) of a received message: the first non-finite one is
  /// recorded in *bad_value as a global element index.
  template <class V>
  void validate(cudaStream_t st, const std::uint8_t* msg, unsigned long long* bad_value,
                unsigned long long* bad_padding, std::size_t& launches) {
    if (empty()) {
      return;
    }
    typed<V>& g = upload<V>(st);
    validate_tiles<cast_coder<V>, false><<<grid_for(tiles_.size(), 1), tile_threads, 0, st>>>(
        g.spans.data(), g.tiles.data(), tiles_.size(), msg, bits<V>, bad_value, bad_padding);
    launches += 3;
  }
  /// Decodes the validated raw values (of type V) into out (assign, or add). After validate<V>.
  /// With Check, writes nothing: records the first element whose write would overflow T.
  template <class V, class T, bool Add, bool Check = false>
  void decode(cudaStream_t st, const std::uint8_t* msg, T* out, std::size_t& launches,
              unsigned long long* first_overflow = nullptr) {
    if (empty()) {
      return;
    }
    typed<V>& g = std::get<typed<V>>(groups_);
    decode_tiles<cast_coder<V>, false, T, Add, Check>
        <<<grid_for(tiles_.size(), 1), tile_threads, 0, st>>>(g.spans.data(), g.tiles.data(),
                                                              tiles_.size(), nullptr, msg, bits<V>,
                                                              out, first_overflow);
    ++launches;
  }

  /// sent[g] = 1 for every element of the raw spans (values of type V; after validate<V>).
  template <class V>
  void mark(cudaStream_t st, std::uint8_t* sent, std::size_t& launches) {
    if (empty()) {
      return;
    }
    typed<V>& g = std::get<typed<V>>(groups_);
    mark_tiles<<<grid_for(tiles_.size(), 1), tile_threads, 0, st>>>(g.spans.data(), g.tiles.data(),
                                                                    tiles_.size(), sent);
    ++launches;
  }

private:
  struct raw_span {
    std::uint64_t global_begin = 0, n = 0, payload = 0;
  };
  template <class V>
  struct typed {
    std::vector<code_span<cast_coder<V>>> host_spans;
    device_array<code_span<cast_coder<V>>> spans;
    device_array<code_tile> tiles;
  };
  template <class V>
  static constexpr unsigned bits = cast_coder<V>::fixed_bits;

  /// The code spans and tiles of the plan for value type V, on the device (two copies).
  template <class V>
  typed<V>& upload(cudaStream_t st) {
    typed<V>& g = std::get<typed<V>>(groups_);
    g.host_spans.clear();
    tiles_.clear();
    for (const raw_span& r : spans_) {
      code_span<cast_coder<V>> sp;
      sp.global_begin = r.global_begin;
      sp.n = r.n;
      sp.payload = r.payload;
      for (std::uint64_t base = 0; base < r.n; base += tile_elements) {
        tiles_.push_back(
            {static_cast<std::uint32_t>(g.host_spans.size()),
             static_cast<std::uint32_t>(std::min<std::uint64_t>(tile_elements, r.n - base)), base});
      }
      g.host_spans.push_back(sp);
    }
    copy(g.host_spans, g.spans, st);
    copy(tiles_, g.tiles, st);
    return g;
  }
  template <class E>
  static void copy(const std::vector<E>& host, device_array<E>& dev, cudaStream_t st) {
    dev.reserve(std::max<std::size_t>(host.size(), 1));
    cuda_check(cudaMemcpyAsync(dev.data(), host.data(), host.size() * sizeof(E),
                               cudaMemcpyHostToDevice, st),
               "upload raw spans");
  }

  std::vector<raw_span> spans_;
  std::vector<code_tile> tiles_;
  std::tuple<typed<float>, typed<half>, typed<bfloat16>> groups_;
};

} // namespace gradcomp::detail::cuda
