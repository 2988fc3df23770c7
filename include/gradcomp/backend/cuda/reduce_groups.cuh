// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../detail/bits.hpp"
#include "../../math/canonical_sum.hpp"
#include "launch.cuh"

#include <cstddef>
#include <cstdint>
#include <cuda_runtime.h>

/// @file
/// The CUDA side of the reduce_groups primitive (backend/cpu/reduce_groups.hpp): the canonical
/// per-group sums of math/canonical_sum.hpp (32 lanes per chunk, the pairwise lane tree, the
/// balanced chunk tree) and max |x|, over every span of a message in two launches.

namespace gradcomp::detail::cuda {

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

} // namespace gradcomp::detail::cuda
