// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../core/float16.hpp"
#include "../../detail/bit_pack.hpp"
#include "../../detail/bits.hpp"
#include "../../detail/checksum.hpp"
#include "../../detail/output_range.hpp"
#include "../../encoding/wire_header.hpp"
#include "../../math/canonical_sum.hpp"
#include "../../math/rounding.hpp"
#include "../../random/stream_key.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cuda_runtime.h>

/// @file
/// The CUDA kernels of the batched codec (backend/cuda/device_codec.cuh). Every kernel covers
/// all spans of a message in one launch: work items (chunks, groups, tiles, blocks) are numbered
/// across spans, and a thread finds its span by binary search in a prefix table, so the launch
/// count does not grow with the number of layers. The per-element math is the shared
/// __host__ __device__ code of math/ and the coders; the reductions follow the canonical order
/// of math/canonical_sum.hpp; random bytes follow random_stream::bits8 at the global index. So
/// the bytes are those of the CPU backend.

namespace gradcomp::detail::cuda {

inline constexpr unsigned warp = 32;
inline constexpr unsigned tile_elements = 2048; ///< codes per encode/decode tile
inline constexpr unsigned tile_threads = 256;
inline constexpr unsigned reduce_threads = 256;
/// Codes in shared memory sit at j + j / 32: a thread packing one output word reads 32 / M
/// consecutive codes, and the padding spreads the threads of a warp over all banks.
__device__ __forceinline__ unsigned padded(unsigned j) {
  return j + j / 32;
}
inline constexpr unsigned padded_tile = tile_elements + tile_elements / 32;

/// Blocks for `items` work items of `per_block` items per block (at least 1, at most 65535:
/// kernels loop over the rest).
inline unsigned grid_for(std::uint64_t items, unsigned per_block) {
  const std::uint64_t g = (items + per_block - 1) / per_block;
  return static_cast<unsigned>(std::min<std::uint64_t>(std::max<std::uint64_t>(g, 1), 65535));
}

/// Index of the last entry of the ascending table a[0..count) that is <= key (a[0] == 0 <= key).
__device__ inline std::uint32_t find_span(const std::uint64_t* a, std::uint32_t count,
                                          std::uint64_t key) {
  std::uint32_t lo = 0, hi = count; // invariant: a[lo] <= key, answer in [lo, hi)
  while (hi - lo > 1) {
    const std::uint32_t mid = lo + (hi - lo) / 2;
    if (a[mid] <= key) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}

/// Host side: the last of `count` spans whose first item, begin(s), is <= item (begin ascending,
/// begin(0) <= item); for the error reports that name a span from a flagged item.
template <class Begin>
std::size_t last_span_at(std::size_t count, std::uint64_t item, Begin begin) {
  std::size_t s = 0;
  while (s + 1 < count && begin(s + 1) <= item) {
    ++s;
  }
  return s;
}

// ---- canonical reductions ------------------------------------------------------------------

/// One span of one reduction slot: its groups of `group` elements are cut into chunks of
/// math::canonical_chunk; chunk and group numbers continue across spans.
struct reduce_span {
  std::uint64_t global_begin = 0;
  std::uint64_t n = 0;
  std::uint64_t group = 1;
  std::uint64_t chunks_per_group = 1;
  std::uint64_t sums_begin = 0; ///< first group (and group sum) of this span; 0 groups for none
  std::uint32_t span = 0;       ///< index in the plan (for the max |x| of the span)
  std::uint32_t kind = 0;       ///< math::sum_kind
};

/// One warp per chunk: lane j adds elements j, j+32, ... of the chunk in index order (the
/// canonical lanes), the lanes are combined by math::combine_lanes, and the max |x| bits of the
/// span are folded in with atomicMax (an order-free maximum).
template <class T>
__global__ void reduce_chunks(const T* __restrict__ x, const reduce_span* __restrict__ spans,
                              const std::uint64_t* __restrict__ chunk_begin, std::uint32_t count,
                              std::uint64_t total_chunks, double* __restrict__ chunk_sums,
                              std::uint32_t* __restrict__ span_max_bits) {
  __shared__ double lanes[reduce_threads];
  const unsigned lane = threadIdx.x % warp;
  double* my_lanes = lanes + (threadIdx.x / warp) * warp;
  const std::uint64_t warps_per_grid = std::uint64_t{gridDim.x} * (blockDim.x / warp);
  for (std::uint64_t c = std::uint64_t{blockIdx.x} * (blockDim.x / warp) + threadIdx.x / warp;
       c < total_chunks; c += warps_per_grid) {
    const std::uint32_t si = find_span(chunk_begin, count, c);
    const reduce_span sp = spans[si];
    const std::uint64_t local = c - chunk_begin[si];
    const std::uint64_t g = local / sp.chunks_per_group;
    const std::uint64_t k = local - g * sp.chunks_per_group;
    const std::uint64_t group_size =
        sp.group < sp.n - g * sp.group ? sp.group : sp.n - g * sp.group;
    const std::uint64_t begin = g * sp.group + k * math::canonical_chunk;
    const std::uint64_t rest = group_size - k * math::canonical_chunk;
    const unsigned len =
        static_cast<unsigned>(rest < math::canonical_chunk ? rest : math::canonical_chunk);
    const T* p = x + sp.global_begin + begin;
    const auto kind = static_cast<math::sum_kind>(sp.kind);
    double acc = 0.0;
    std::uint32_t mb = 0;
    constexpr unsigned batch = 8; // loads in flight per lane; the adds stay in index order
    for (unsigned i0 = lane; i0 < len; i0 += batch * warp) {
      float v[batch];
#pragma unroll
      for (unsigned u = 0; u < batch; ++u) {
        const unsigned i = i0 + u * warp;
        v[u] = i < len ? to_float(p[i]) : 0.0f;
      }
#pragma unroll
      for (unsigned u = 0; u < batch; ++u) {
        if (i0 + u * warp < len) {
          const std::uint32_t b = abs_bits(v[u]);
          mb = b > mb ? b : mb;
          acc += math::summand(v[u], kind);
        }
      }
    }
    mb = __reduce_max_sync(0xffffffffu, mb);
    if (lane == 0) {
      atomicMax(span_max_bits + sp.span, mb);
    }
    if (kind != math::sum_kind::none) {
      my_lanes[lane] = acc;
      __syncwarp();
      if (lane == 0) {
        chunk_sums[c] = math::combine_lanes(my_lanes);
      }
      __syncwarp();
    }
  }
}

/// The balanced tree sum over v[lo, hi): sum(lo, mid) + sum(mid, hi), mid = lo + (hi - lo) / 2.
__device__ inline double tree_sum(const double* v, std::uint64_t lo, std::uint64_t hi) {
  // iterative post-order over the same tree as the recursive definition (depth <= 64)
  struct frame {
    std::uint64_t lo, hi;
    double left;
    int state;
  };
  frame stack[64];
  int top = 0;
  stack[0] = {lo, hi, 0.0, 0};
  double ret = 0.0;
  while (top >= 0) {
    frame& f = stack[top];
    const std::uint64_t n = f.hi - f.lo;
    if (n <= 1) {
      ret = n == 0 ? 0.0 : v[f.lo];
      --top;
      continue;
    }
    const std::uint64_t mid = f.lo + n / 2;
    if (f.state == 0) {
      f.state = 1;
      stack[top + 1] = {f.lo, mid, 0.0, 0};
      ++top;
    } else if (f.state == 1) {
      f.left = ret;
      f.state = 2;
      stack[top + 1] = {mid, f.hi, 0.0, 0};
      ++top;
    } else {
      ret = f.left + ret;
      --top;
    }
  }
  return ret;
}

/// One block of 2^D threads per group: the group's chunk sums combined by the balanced tree.
/// Each thread sums the subtree D levels down along the bits of its number; the top of the tree
/// is then added level by level in shared memory, in its own shape (a node of at most one chunk
/// is a leaf: its leftmost thread holds it and nothing is added).
template <unsigned D>
__global__ void __launch_bounds__(1u << D)
    combine_groups(const reduce_span* __restrict__ spans,
                   const std::uint64_t* __restrict__ sums_begin, std::uint32_t count,
                   std::uint64_t total_groups, const std::uint64_t* __restrict__ chunk_begin,
                   const double* __restrict__ chunk_sums, double* __restrict__ group_sums) {
  __shared__ double value[1u << D];
  const unsigned t = threadIdx.x;
  for (std::uint64_t g = blockIdx.x; g < total_groups; g += gridDim.x) {
    const std::uint32_t si = find_span(sums_begin, count, g);
    const reduce_span sp = spans[si];
    const std::uint64_t local = g - sp.sums_begin;
    const std::uint64_t size =
        sp.group < sp.n - local * sp.group ? sp.group : sp.n - local * sp.group;
    const std::uint64_t chunks = (size + math::canonical_chunk - 1) / math::canonical_chunk;
    const double* v = chunk_sums + chunk_begin[si] + local * sp.chunks_per_group;
    std::uint64_t lo[D + 1], hi[D + 1];
    lo[0] = 0;
    hi[0] = chunks;
    bool owner = true;
#pragma unroll
    for (unsigned d = 0; d < D; ++d) {
      const bool right = ((t >> (D - 1 - d)) & 1u) != 0;
      lo[d + 1] = lo[d];
      hi[d + 1] = hi[d];
      if (hi[d] - lo[d] <= 1) {
        owner = owner && !right;
        continue;
      }
      const std::uint64_t mid = lo[d] + (hi[d] - lo[d]) / 2;
      if (right) {
        lo[d + 1] = mid;
      } else {
        hi[d + 1] = mid;
      }
    }
    value[t] = owner ? tree_sum(v, lo[D], hi[D]) : 0.0;
    __syncthreads();
#pragma unroll
    for (int d = static_cast<int>(D) - 1; d >= 0; --d) {
      const unsigned bit = 1u << (D - 1 - static_cast<unsigned>(d));
      if ((t & (2 * bit - 1)) == 0 && hi[d] - lo[d] > 1) {
        value[t] = value[t] + value[t + bit];
      }
      __syncthreads();
    }
    if (t == 0) {
      group_sums[g] = value[0];
    }
    __syncthreads();
  }
}

// ---- codes -----------------------------------------------------------------------------------

/// One span of a code stream (a width group: every span whose coder has width B).
template <class Coder>
struct code_span {
  std::uint64_t global_begin = 0;
  std::uint64_t n = 0;
  std::uint64_t payload = 0;      ///< byte offset of the (magnitude) code stream in the message
  std::uint64_t sign_payload = 0; ///< byte offset of the sign stream (sign-plane coders)
  std::uint64_t scale_begin = 0;  ///< first scale of the span in the scales array
  std::uint64_t group = 1;        ///< elements per scale
  std::uint32_t has_scales = 0;
  Coder coder{};
};

/// A tile: up to tile_elements consecutive codes of one span, starting at a multiple of
/// tile_elements (so its codes start on a byte boundary of every stream).
struct code_tile {
  std::uint32_t span = 0;
  std::uint32_t len = 0;
  std::uint64_t base = 0; ///< span-local index of the first code
};

/// Code widths are runtime values (one kernel per coder, not per width: QSGD's levels give any
/// width from 2 to 31 bits).
__device__ __forceinline__ std::uint32_t magnitude_mask(unsigned m) {
  return m >= 32 ? 0xffffffffu : (1u << m) - 1u;
}

/// Packs codes[0, len) (bits [0, M) of each; entries past len are zero) LSB-first into `dst`,
/// packed_bytes(len, M) bytes, one 32-bit output word per thread step.
__device__ inline void pack_tile(const std::uint32_t* codes, unsigned len, std::uint8_t* dst,
                                 unsigned M, unsigned shift_codes) {
  const std::uint64_t bytes = packed_bytes(len, M);
  const std::uint32_t mask = magnitude_mask(M);
  const unsigned words = static_cast<unsigned>((bytes + 3) / 4);
  for (unsigned w = threadIdx.x; w < words; w += blockDim.x) {
    const std::uint64_t bit0 = std::uint64_t{w} * 32;
    const unsigned j0 = static_cast<unsigned>(bit0 / M);
    unsigned j1 = static_cast<unsigned>((bit0 + 31) / M);
    j1 = j1 < tile_elements - 1 ? j1 : tile_elements - 1;
    std::uint64_t acc = 0;
    for (unsigned j = j0; j <= j1; ++j) {
      const std::uint64_t c = (codes[padded(j)] >> shift_codes) & mask;
      const std::int64_t shift =
          static_cast<std::int64_t>(std::uint64_t{j} * M) - static_cast<std::int64_t>(bit0);
      acc |= shift >= 0 ? (c << shift) : (c >> -shift);
    }
    for (unsigned b = 0; b < 4; ++b) {
      if (4ull * w + b < bytes) {
        dst[4ull * w + b] = static_cast<std::uint8_t>(acc >> (8 * b));
      }
    }
  }
}

/// Reads code j (bits [0, M)) of a stream of `bytes` bytes, LSB-first; bytes past the end read 0.
__device__ __forceinline__ std::uint32_t load_code(const std::uint8_t* src, std::uint64_t bytes,
                                                   std::uint64_t j, unsigned M) {
  const std::uint64_t bit = j * M;
  const std::uint64_t first = bit / 8;
  std::uint64_t acc = 0;
  const unsigned span_bytes = (M + 7 + 7) / 8;
  for (unsigned b = 0; b < span_bytes; ++b) {
    if (first + b < bytes) {
      acc |= std::uint64_t{src[first + b]} << (8 * b);
    }
  }
  return static_cast<std::uint32_t>(acc >> (bit % 8)) & magnitude_mask(M);
}

/// Fills `rnd` with the high random bytes (random_stream::bits8) of global elements
/// [g0, g0 + len): rnd[e - 128 floor(g0 / 128)] is the byte of element e.
__device__ inline void tile_random_bytes(const random_stream& rs, std::uint64_t g0, unsigned len,
                                         std::uint8_t* rnd) {
  const std::uint64_t group0 = g0 >> 7;
  const std::uint64_t groups = ((g0 + len - 1) >> 7) - group0 + 1;
  for (unsigned t = threadIdx.x; t < groups * 8; t += blockDim.x) {
    const philox_counter v = rs.block(group0 * 8 + t);
    std::uint8_t* o = rnd + (t >> 3) * 128 + 4 * (t & 7u);
    for (unsigned l = 0; l < 4; ++l) {
      for (unsigned b = 0; b < 4; ++b) {
        o[32 * l + b] = static_cast<std::uint8_t>(v[l] >> (8 * b));
      }
    }
  }
}

template <class Coder>
__device__ __forceinline__ float span_scale(const code_span<Coder>& sp, const float* scales,
                                            std::uint64_t local) {
  return sp.has_scales != 0 ? scales[sp.scale_begin + local / sp.group] : 0.0f;
}

/// Codes every element of every tile and packs them into the message (codes, then the sign
/// plane for sign-plane coders).
template <class Coder, bool SignPlane, class T>
__global__ void __launch_bounds__(tile_threads)
    encode_tiles(const T* __restrict__ x, const code_span<Coder>* __restrict__ spans,
                 const code_tile* __restrict__ tiles, std::uint64_t tile_count,
                 const float* __restrict__ scales, random_stream rs, unsigned B,
                 std::uint8_t* msg) {
  __shared__ std::uint32_t codes[padded_tile];
  __shared__ std::uint8_t rnd[tile_elements + 2 * 128];
  const random_stream low = rs.with_purpose(random_purpose::rounding_low);
  for (std::uint64_t t = blockIdx.x; t < tile_count; t += gridDim.x) {
    const code_tile tile = tiles[t];
    const code_span<Coder> sp = spans[tile.span];
    const std::uint64_t g0 = sp.global_begin + tile.base;
    if constexpr (Coder::uses_random) {
      tile_random_bytes(rs, g0, tile.len, rnd);
      __syncthreads();
    }
    const std::uint64_t rnd0 = (g0 >> 7) << 7;
    for (unsigned j = threadIdx.x; j < tile_elements; j += blockDim.x) {
      std::uint32_t code = 0;
      if (j < tile.len) {
        const float v = to_float(x[g0 + j]);
        const float s = span_scale(sp, scales, tile.base + j);
        std::uint32_t up = 0;
        if constexpr (Coder::uses_random) {
          const math::threshold_word th = sp.coder.threshold(v, s);
          const std::uint32_t h = rnd[g0 + j - rnd0];
          up = h < th.high ? 1u : 0u;
          if (h == th.high) {
            up = (low.bits32(g0 + j) & 0xffffffu) < th.low ? 1u : 0u;
          }
        }
        code = sp.coder.code(v, s, up);
      }
      codes[padded(j)] = code;
    }
    __syncthreads();
    const unsigned M = SignPlane ? B - 1 : B;
    pack_tile(codes, tile.len, msg + sp.payload + tile.base / 8 * M, M, 0);
    if constexpr (SignPlane) {
      pack_tile(codes, tile.len, msg + sp.sign_payload + tile.base / 8, 1, M);
    }
    __syncthreads();
  }
}

/// Reads code j of a span's streams.
template <class Coder, bool SignPlane>
__device__ __forceinline__ std::uint32_t
read_code(const code_span<Coder>& sp, const std::uint8_t* msg, std::uint64_t j, unsigned B) {
  const unsigned M = SignPlane ? B - 1 : B;
  std::uint32_t c = load_code(msg + sp.payload, packed_bytes(sp.n, M), j, M);
  if constexpr (SignPlane) {
    c |= load_code(msg + sp.sign_payload, packed_bytes(sp.n, 1u), j, 1) << M;
  }
  return c;
}

/// Validation: the first invalid code (as a global element index) and the first span whose
/// stream padding bits are not zero, each folded in with atomicMin.
template <class Coder, bool SignPlane>
__global__ void __launch_bounds__(tile_threads)
    validate_tiles(const code_span<Coder>* __restrict__ spans, const code_tile* __restrict__ tiles,
                   std::uint64_t tile_count, const std::uint8_t* __restrict__ msg, unsigned B,
                   unsigned long long* first_bad_code, unsigned long long* first_bad_padding) {
  const unsigned M = SignPlane ? B - 1 : B;
  for (std::uint64_t t = blockIdx.x; t < tile_count; t += gridDim.x) {
    const code_tile tile = tiles[t];
    const code_span<Coder> sp = spans[tile.span];
    for (unsigned j = threadIdx.x; j < tile.len; j += blockDim.x) {
      const std::uint32_t c = read_code<Coder, SignPlane>(sp, msg, tile.base + j, B);
      if (!sp.coder.valid(c)) {
        atomicMin(first_bad_code, static_cast<unsigned long long>(sp.global_begin + tile.base + j));
      }
    }
    if (threadIdx.x == 0 && tile.base + tile.len == sp.n) {
      const auto padding_ok = [](const std::uint8_t* stream, std::uint64_t n, unsigned bits) {
        const std::uint64_t used = (n % 8) * bits % 8;
        return used == 0 || (stream[packed_bytes(n, bits) - 1] >> used) == 0;
      };
      bool ok = padding_ok(msg + sp.payload, sp.n, M);
      if constexpr (SignPlane) {
        ok = ok && padding_ok(msg + sp.sign_payload, sp.n, 1);
      }
      if (!ok) {
        atomicMin(first_bad_padding, static_cast<unsigned long long>(tile.span));
      }
    }
  }
}

/// Decodes every element of every tile into out (assign, or add to what is there). With Check,
/// writes nothing: records the lowest global index whose write would overflow T
/// (detail::write_overflows) in *first_overflow.
template <class Coder, bool SignPlane, class T, bool Add, bool Check = false>
__global__ void __launch_bounds__(tile_threads)
    decode_tiles(const code_span<Coder>* __restrict__ spans, const code_tile* __restrict__ tiles,
                 std::uint64_t tile_count, const float* __restrict__ scales,
                 const std::uint8_t* __restrict__ msg, unsigned B, T* __restrict__ out,
                 unsigned long long* __restrict__ first_overflow) {
  for (std::uint64_t t = blockIdx.x; t < tile_count; t += gridDim.x) {
    const code_tile tile = tiles[t];
    const code_span<Coder> sp = spans[tile.span];
    for (unsigned j = threadIdx.x; j < tile.len; j += blockDim.x) {
      const std::uint64_t local = tile.base + j;
      const std::uint32_t c = read_code<Coder, SignPlane>(sp, msg, local, B);
      const float v = sp.coder.decode(c, span_scale(sp, scales, local));
      T* o = out + sp.global_begin + local;
      if constexpr (Check) {
        if (write_overflows<T>(Add ? to_float(*o) : 0.0f, v, Add)) {
          atomicMin(first_overflow, static_cast<unsigned long long>(sp.global_begin + local));
        }
      } else if constexpr (Add) {
        *o = from_float<T>(to_float(*o) + v);
      } else {
        *o = from_float<T>(v);
      }
    }
  }
}

// ---- scales ----------------------------------------------------------------------------------

/// Writes scale i of the table entry s (the last with scale_begin <= i) at byte
/// payload[s] + 4 (i - scale_begin[s]).
__global__ void write_scales(const std::uint64_t* __restrict__ scale_begin,
                             const std::uint64_t* __restrict__ payload, std::uint32_t count,
                             std::uint64_t total, const float* __restrict__ scales,
                             std::uint8_t* msg) {
  for (std::uint64_t i = std::uint64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < total;
       i += std::uint64_t{gridDim.x} * blockDim.x) {
    const std::uint32_t s = find_span(scale_begin, count, i);
    const std::uint32_t bits = float_bits(scales[i]);
    std::uint8_t* o = msg + payload[s] + 4 * (i - scale_begin[s]);
    for (unsigned b = 0; b < 4; ++b) {
      o[b] = static_cast<std::uint8_t>(bits >> (8 * b));
    }
  }
}

/// Reads the scales out of a message; a negative or non-finite one is recorded (first index).
__global__ void read_scales(const std::uint64_t* __restrict__ scale_begin,
                            const std::uint64_t* __restrict__ payload, std::uint32_t count,
                            std::uint64_t total, const std::uint8_t* __restrict__ msg,
                            float* __restrict__ scales, unsigned long long* first_bad) {
  for (std::uint64_t i = std::uint64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < total;
       i += std::uint64_t{gridDim.x} * blockDim.x) {
    const std::uint32_t s = find_span(scale_begin, count, i);
    const std::uint8_t* p = msg + payload[s] + 4 * (i - scale_begin[s]);
    const std::uint32_t bits = std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) |
                               (std::uint32_t{p[2]} << 16) | (std::uint32_t{p[3]} << 24);
    const float v = bits_float(bits);
    scales[i] = v;
    if (is_non_finite(v) || v < 0.0f) { // valid_scale of every compressor with scales
      atomicMin(first_bad, static_cast<unsigned long long>(i));
    }
  }
}

// ---- checksum --------------------------------------------------------------------------------

/// One thread per checksum block (detail/checksum.hpp); the digests are summed with atomicAdd
/// (addition mod 2^64 is order-free). The checksum field, bytes [48, 56), reads as zero.
template <bool Aligned>
__global__ void checksum_blocks(const std::uint8_t* __restrict__ msg, std::uint64_t size,
                                unsigned long long* sum) {
  const std::uint64_t blocks = (size + checksum_block_bytes - 1) / checksum_block_bytes;
  unsigned long long mine = 0;
  for (std::uint64_t b = std::uint64_t{blockIdx.x} * blockDim.x + threadIdx.x; b < blocks;
       b += std::uint64_t{gridDim.x} * blockDim.x) {
    const std::uint64_t begin = b * checksum_block_bytes;
    const std::uint64_t n =
        size - begin < checksum_block_bytes ? size - begin : checksum_block_bytes;
    const std::uint8_t* p = msg + begin;
    const auto word = [&](std::uint64_t i) -> std::uint64_t {
      if (b == 0 && i == wire_checksum_offset) {
        return 0;
      }
      if (Aligned && i + 8 <= n) {
        return reinterpret_cast<const std::uint64_t*>(p)[i / 8];
      }
      std::uint64_t w = 0;
      for (unsigned j = 0; j < 8 && i + j < n; ++j) {
        w |= std::uint64_t{p[i + j]} << (8 * j);
      }
      return w;
    };
    checksum_lanes h;
    std::uint64_t i = 0;
    for (; i + 32 <= n; i += 32) {
      const std::uint64_t w[4] = {word(i), word(i + 8), word(i + 16), word(i + 24)};
      h.row(w);
    }
    for (; i < n; i += 8) {
      h.tail(word(i));
    }
    mine += h.digest(b, n);
  }
  for (unsigned o = warp / 2; o > 0; o /= 2) {
    mine += __shfl_down_sync(0xffffffffu, mine, o);
  }
  if (threadIdx.x % warp == 0) {
    atomicAdd(sum, mine);
  }
}

/// Writes the finished checksum into the message (seal) and into *result.
__global__ void checksum_finish_kernel(const unsigned long long* sum, std::uint64_t size,
                                       std::uint8_t* msg_or_null, unsigned long long* result) {
  const std::uint64_t c = checksum_finish(*sum, size);
  *result = c;
  if (msg_or_null != nullptr) {
    for (unsigned b = 0; b < 8; ++b) {
      msg_or_null[wire_checksum_offset + b] = static_cast<std::uint8_t>(c >> (8 * b));
    }
  }
}

/// Launches the checksum of a device message of `size` bytes (three launches): scratch[0] gets
/// the digest sum, scratch[1] the checksum; `seal` also writes it into bytes [48, 56).
inline void checksum_async(cudaStream_t stream, std::uint8_t* msg, std::uint64_t size,
                           unsigned long long* scratch, bool seal) {
  cudaMemsetAsync(scratch, 0, sizeof(unsigned long long), stream);
  const std::uint64_t blocks = (size + checksum_block_bytes - 1) / checksum_block_bytes;
  const auto grid = static_cast<unsigned>(blocks / 128 + 1 < 65535 ? blocks / 128 + 1 : 65535);
  if (reinterpret_cast<std::uintptr_t>(msg) % 8 == 0) {
    checksum_blocks<true><<<grid, 128, 0, stream>>>(msg, size, scratch);
  } else {
    checksum_blocks<false><<<grid, 128, 0, stream>>>(msg, size, scratch);
  }
  checksum_finish_kernel<<<1, 1, 0, stream>>>(scratch, size, seal ? msg : nullptr, scratch + 1);
}

} // namespace gradcomp::detail::cuda
