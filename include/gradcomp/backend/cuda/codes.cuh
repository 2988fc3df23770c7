// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../core/float16.hpp"
#include "../../detail/bit_pack.hpp"
#include "../../detail/bits.hpp"
#include "../../detail/output_range.hpp"
#include "../../math/rounding.hpp"
#include "../../random/stream_key.hpp"
#include "launch.cuh"

#include <cstddef>
#include <cstdint>
#include <cuda_runtime.h>

/// @file
/// The CUDA side of the encode_codes and decode_codes primitives (backend/cpu/codes.hpp): the
/// shared __host__ __device__ coders applied per element, with Philox bytes at the global index
/// (random_stream::bits8), packed into and unpacked from fixed-width streams tile by tile over
/// every span at once; and the scales in front of each span's codes.

namespace gradcomp::detail::cuda {

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

} // namespace gradcomp::detail::cuda
