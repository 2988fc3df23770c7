// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../compressor/selection_rule.hpp"
#include "../../core/float16.hpp"
#include "../../detail/bits.hpp"
#include "../../random/stream_key.hpp"
#include "kernels.cuh"

#include <cstddef>
#include <cstdint>
#include <cuda_runtime.h>
#include <type_traits>

/// @file
/// Kernels of the sparse device codec (backend/cuda/sparse_engine.cuh), every one over all spans
/// in one launch (one block per tile of one span). Selection is exact and matches the CPU:
///  - predicate rules (threshold-v, adaptive threshold) flag x_i by the same test;
///  - sample rules (random-k) mark their draws (backend/cuda/sample_kernels.cuh);
///  - top-key rules (top-k on |x| bits) find the k-th
///    largest key of every span by a segmented radix select (8-bit digits, most significant
///    first), then keep the keys above it and, of the keys equal to it, the lowest indices;
/// flags become positions by an exclusive scan over the whole buffer (CUB), so the kept indices
/// of every span come out ascending, as on the CPU.

namespace gradcomp::detail::cuda {

/// The key type of a rule's radix select (a predicate rule has none; its spans carry a u32).
template <class Rule>
struct rule_key {
  using type = std::uint32_t;
};
template <top_keys_rule Rule>
struct rule_key<Rule> {
  using type = typename Rule::key_type;
};

/// One span of a sparse scheme on the device: its sparsifier's rule for this call
/// (compressor/selection_rule.hpp), evaluated on the span's values as on the CPU.
template <class Rule>
struct sparse_span {
  using key_type = typename rule_key<Rule>::type;
  Rule rule{};
  std::uint64_t global_begin = 0;
  std::uint64_t n = 0;
  std::uint64_t k = 0;       ///< top-key and sample rules: how many to keep
  std::uint32_t implied = 0; ///< indices implied by the seed: none on the wire
  key_type prefix = 0;       ///< radix select: the k-th key's digits found so far
  std::uint64_t need = 0;    ///< radix select: keys still to take among those matching prefix

  /// The rule on element i of the span; x is the whole gradient (null for a rule that reads no
  /// values: regenerating a shared subset).
  template <class T>
  [[nodiscard]] __device__ key_type key(const T* x, std::uint64_t i) const {
    return rule.key(x != nullptr ? x + global_begin : x, i);
  }
  template <class T>
  [[nodiscard]] __device__ bool keep(const T* x, std::uint64_t i) const {
    return rule.keep(x + global_begin, i);
  }
};

/// Radix select pass: histogram of the digit at `shift` of the keys that match the span's prefix
/// above it (block-local in shared memory, then added to the span's 256 bins).
template <class Rule, class T>
__global__ void __launch_bounds__(tile_threads)
    key_histogram(const T* __restrict__ x, const sparse_span<Rule>* __restrict__ spans,
                  const code_tile* __restrict__ tiles, std::uint64_t tile_count, unsigned shift,
                  unsigned* __restrict__ hist) {
  using Key = typename sparse_span<Rule>::key_type;
  __shared__ unsigned bins[256];
  for (std::uint64_t t = blockIdx.x; t < tile_count; t += gridDim.x) {
    for (unsigned b = threadIdx.x; b < 256; b += blockDim.x) {
      bins[b] = 0;
    }
    __syncthreads();
    const code_tile tile = tiles[t];
    const sparse_span<Rule> sp = spans[tile.span];
    const unsigned above = shift + 8;
    for (unsigned j = threadIdx.x; j < tile.len; j += blockDim.x) {
      const Key key = sp.key(x, tile.base + j);
      const bool match = above >= sizeof(Key) * 8 || (key >> above) == (sp.prefix >> above);
      if (match) {
        atomicAdd(&bins[(key >> shift) & 0xffu], 1u);
      }
    }
    __syncthreads();
    for (unsigned b = threadIdx.x; b < 256; b += blockDim.x) {
      if (bins[b] != 0) {
        atomicAdd(&hist[std::uint64_t{tile.span} * 256 + b], bins[b]);
      }
    }
    __syncthreads();
  }
}

/// Radix select pass: each span takes the digit where its k-th key lies (one thread per span).
template <class Rule>
__global__ void pick_digit(sparse_span<Rule>* spans, std::uint32_t count, unsigned shift,
                           const unsigned* __restrict__ hist) {
  using Key = typename sparse_span<Rule>::key_type;
  for (std::uint32_t s = blockIdx.x * blockDim.x + threadIdx.x; s < count;
       s += gridDim.x * blockDim.x) {
    sparse_span<Rule>& sp = spans[s];
    if (sp.n == 0 || sp.k == 0) {
      continue;
    }
    const unsigned* h = hist + std::uint64_t{s} * 256;
    for (int d = 255; d >= 0; --d) {
      if (sp.need > h[d]) {
        sp.need -= h[d];
      } else {
        sp.prefix |= static_cast<Key>(d) << shift;
        break;
      }
    }
  }
}

/// Flags of a top-key selection, stage 1: 1 where the key equals the span's k-th key (for the
/// tie ranks); stage 2 (with the scanned tie flags): 1 where the element is kept.
template <class Rule, class T, bool Final>
__global__ void __launch_bounds__(tile_threads)
    top_key_flags(const T* __restrict__ x, const sparse_span<Rule>* __restrict__ spans,
                  const code_tile* __restrict__ tiles, std::uint64_t tile_count,
                  const unsigned* __restrict__ tie_rank, unsigned* __restrict__ flags) {
  using Key = typename sparse_span<Rule>::key_type;
  for (std::uint64_t t = blockIdx.x; t < tile_count; t += gridDim.x) {
    const code_tile tile = tiles[t];
    const sparse_span<Rule> sp = spans[tile.span];
    for (unsigned j = threadIdx.x; j < tile.len; j += blockDim.x) {
      const std::uint64_t g = sp.global_begin + tile.base + j;
      const Key key = sp.key(x, tile.base + j);
      if constexpr (!Final) {
        flags[g] = key == sp.prefix ? 1u : 0u;
      } else {
        const unsigned rank = tie_rank[g] - tie_rank[sp.global_begin];
        flags[g] = (key > sp.prefix || (key == sp.prefix && rank < sp.need)) ? 1u : 0u;
      }
    }
  }
}

/// Flags of a predicate selection.
template <class Rule, class T>
__global__ void __launch_bounds__(tile_threads)
    predicate_flags(const T* __restrict__ x, const sparse_span<Rule>* __restrict__ spans,
                    const code_tile* __restrict__ tiles, std::uint64_t tile_count,
                    unsigned* __restrict__ flags) {
  for (std::uint64_t t = blockIdx.x; t < tile_count; t += gridDim.x) {
    const code_tile tile = tiles[t];
    const sparse_span<Rule> sp = spans[tile.span];
    for (unsigned j = threadIdx.x; j < tile.len; j += blockDim.x) {
      flags[sp.global_begin + tile.base + j] = sp.keep(x, tile.base + j) ? 1u : 0u;
    }
  }
}

/// Kept count of every span from the scanned positions (positions has n + 1 entries).
template <class Rule>
__global__ void span_counts(const sparse_span<Rule>* __restrict__ spans, std::uint32_t count,
                            const unsigned* __restrict__ positions,
                            unsigned long long* __restrict__ counts) {
  for (std::uint32_t s = blockIdx.x * blockDim.x + threadIdx.x; s < count;
       s += gridDim.x * blockDim.x) {
    const sparse_span<Rule> sp = spans[s];
    counts[s] = positions[sp.global_begin + sp.n] - positions[sp.global_begin];
  }
}

/// Where a span's sparse payload goes, per call.
struct sparse_out {
  std::uint64_t offset = 0; ///< of the span payload (its 16-byte header) in the message
  std::uint64_t k = 0;
  std::uint32_t index_bytes = 2; ///< 0: a raw span (no header, no entries)
  std::uint32_t implied = 0;
};

__device__ __forceinline__ void store_bytes(std::uint8_t* p, std::uint64_t v, unsigned bytes) {
  for (unsigned b = 0; b < bytes; ++b) {
    p[b] = static_cast<std::uint8_t>(v >> (8 * b));
  }
}
template <class V>
__device__ __forceinline__ std::uint32_t value_bits(float v) {
  if constexpr (std::is_same_v<V, float>) {
    return float_bits(v);
  } else {
    return from_float<V>(v).bits;
  }
}
template <class V>
__device__ __forceinline__ float value_from_bits(std::uint32_t b) {
  if constexpr (std::is_same_v<V, float>) {
    return bits_float(b);
  } else {
    return to_float(V{static_cast<std::uint16_t>(b)});
  }
}

/// Bytes of one stored value of type V; void: no values in the message (composite spans carry
/// codes instead).
template <class V>
inline constexpr unsigned stored_value_bytes = sizeof(V);
template <>
inline constexpr unsigned stored_value_bytes<void> = 0;

/// Writes the kept indices (span-local, index_bytes each, unless implied) and values (as V;
/// none for V = void).
template <class V, class Rule, class T>
__global__ void __launch_bounds__(tile_threads)
    write_sparse(const T* __restrict__ x, const sparse_span<Rule>* __restrict__ spans,
                 const code_tile* __restrict__ tiles, std::uint64_t tile_count,
                 const unsigned* __restrict__ flags, const unsigned* __restrict__ positions,
                 const sparse_out* __restrict__ outs, std::uint8_t* msg) {
  for (std::uint64_t t = blockIdx.x; t < tile_count; t += gridDim.x) {
    const code_tile tile = tiles[t];
    const sparse_span<Rule> sp = spans[tile.span];
    const sparse_out o = outs[tile.span];
    for (unsigned j = threadIdx.x; j < tile.len; j += blockDim.x) {
      const std::uint64_t g = sp.global_begin + tile.base + j;
      if (flags[g] == 0) {
        continue;
      }
      const std::uint64_t r = positions[g] - positions[sp.global_begin];
      std::uint8_t* q = msg + o.offset + 16;
      if (o.implied == 0) {
        store_bytes(q + r * o.index_bytes, tile.base + j, o.index_bytes);
        q += o.k * o.index_bytes;
      }
      if constexpr (!std::is_void_v<V>) {
        store_bytes(q + r * sizeof(V), value_bits<V>(to_float(x[g])), sizeof(V));
      }
    }
  }
}

/// Which spans find_unfit_kept checks, and the value scale of their kept values.
struct kept_check {
  float value_scale = 1.0f;
  std::uint32_t checked = 0;
};

/// The lowest global index of a kept element of a checked span whose value Span::value_unfit
/// (the CPU's test, encoding/sparse_coo.hpp), into *first_bad.
template <class Span, class Rule, class T>
__global__ void __launch_bounds__(tile_threads)
    find_unfit_kept(const T* __restrict__ x, const sparse_span<Rule>* __restrict__ spans,
                    const code_tile* __restrict__ tiles, std::uint64_t tile_count,
                    const unsigned* __restrict__ flags, const kept_check* __restrict__ checks,
                    unsigned long long* __restrict__ first_bad) {
  for (std::uint64_t t = blockIdx.x; t < tile_count; t += gridDim.x) {
    const code_tile tile = tiles[t];
    const kept_check c = checks[tile.span];
    if (c.checked == 0) {
      continue;
    }
    const std::uint64_t begin = spans[tile.span].global_begin + tile.base;
    for (unsigned j = threadIdx.x; j < tile.len; j += blockDim.x) {
      const std::uint64_t g = begin + j;
      if (flags[g] != 0 && Span::value_unfit(to_float(x[g]), c.value_scale)) {
        atomicMin(first_bad, static_cast<unsigned long long>(g));
      }
    }
  }
}

/// Gathers the kept values of every span, times the span's value scale, to
/// kept[global_begin + rank]: the composite codec quantizes them there (as the CPU does over its
/// gathered values), so code j of a span is keyed by the span's offset plus j.
template <class Rule, class T>
__global__ void __launch_bounds__(tile_threads)
    gather_kept(const T* __restrict__ x, const sparse_span<Rule>* __restrict__ spans,
                const code_tile* __restrict__ tiles, std::uint64_t tile_count,
                const unsigned* __restrict__ flags, const unsigned* __restrict__ positions,
                const float* __restrict__ value_scales, float* __restrict__ kept) {
  for (std::uint64_t t = blockIdx.x; t < tile_count; t += gridDim.x) {
    const code_tile tile = tiles[t];
    const sparse_span<Rule> sp = spans[tile.span];
    const float scale = value_scales[tile.span];
    for (unsigned j = threadIdx.x; j < tile.len; j += blockDim.x) {
      const std::uint64_t g = sp.global_begin + tile.base + j;
      if (flags[g] != 0) {
        kept[sp.global_begin + positions[g] - positions[sp.global_begin]] = to_float(x[g]) * scale;
      }
    }
  }
}

/// Scatters 16-byte span headers (built on the host) to their offsets (not for raw spans).
__global__ void scatter_headers(const std::uint8_t* __restrict__ headers,
                                const sparse_out* __restrict__ outs, std::uint32_t count,
                                std::uint8_t* msg) {
  for (std::uint64_t i = std::uint64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < count * 16ull;
       i += std::uint64_t{gridDim.x} * blockDim.x) {
    const sparse_out o = outs[i / 16];
    if (o.index_bytes != 0) {
      msg[o.offset + i % 16] = headers[i];
    }
  }
}

/// The global indices of the flagged elements, in order (regenerated implied indices).
__global__ void compact_indices(const unsigned* __restrict__ flags,
                                const unsigned* __restrict__ positions, std::uint64_t n,
                                std::uint64_t* __restrict__ out) {
  for (std::uint64_t g = std::uint64_t{blockIdx.x} * blockDim.x + threadIdx.x; g < n;
       g += std::uint64_t{gridDim.x} * blockDim.x) {
    if (flags[g] != 0) {
      out[positions[g]] = g;
    }
  }
}

/// Max |x| bits of every span (the finiteness check), one block per tile.
template <class Rule, class T>
__global__ void __launch_bounds__(tile_threads)
    span_max_bits(const T* __restrict__ x, const sparse_span<Rule>* __restrict__ spans,
                  const code_tile* __restrict__ tiles, std::uint64_t tile_count,
                  std::uint32_t* __restrict__ max_bits) {
  for (std::uint64_t t = blockIdx.x; t < tile_count; t += gridDim.x) {
    const code_tile tile = tiles[t];
    const sparse_span<Rule> sp = spans[tile.span];
    std::uint32_t m = 0;
    for (unsigned j = threadIdx.x; j < tile.len; j += blockDim.x) {
      const std::uint32_t b = abs_bits(to_float(x[sp.global_begin + tile.base + j]));
      m = b > m ? b : m;
    }
    m = __reduce_max_sync(0xffffffffu, m);
    if (threadIdx.x % warp == 0) {
      atomicMax(max_bits + tile.span, m);
    }
  }
}

} // namespace gradcomp::detail::cuda
