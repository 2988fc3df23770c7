// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../compressor/selection_rule.hpp"
#include "launch.cuh"
#include "sparse_kernels.cuh"

#include <cstdint>
#include <cuda_runtime.h>

/// @file
/// The selection of sample rules (random-k) on the device, the CPU's select_sample in three
/// launches over all spans: every element of a compressed span starts unmarked; draws 0 ..
/// distinct-1 of every span are marked in parallel (marks are idempotent, so the set is the
/// union whatever the order); after a scan of the flags gives each span's marked count, one
/// thread per span continues the span's draw sequence, in order, until `distinct` indices are
/// marked, exactly as the CPU's loop does. A flag is 1 where the span keeps the element: the
/// marked elements, or the unmarked ones when the rule keeps a complement (sample_target_of).

namespace gradcomp::detail::cuda {

template <class Rule>
__device__ __forceinline__ unsigned sample_mark(const sparse_span<Rule>& sp) {
  return sample_target_of(sp.n, sp.k).complement ? 0u : 1u;
}

/// Stage 1: the flags of every compressed span's elements, unmarked.
template <class Rule>
__global__ void __launch_bounds__(tile_threads)
    sample_clear_flags(const sparse_span<Rule>* __restrict__ spans,
                       const code_tile* __restrict__ tiles, std::uint64_t tile_count,
                       unsigned* __restrict__ flags) {
  for (std::uint64_t t = blockIdx.x; t < tile_count; t += gridDim.x) {
    const code_tile tile = tiles[t];
    const sparse_span<Rule> sp = spans[tile.span];
    const unsigned unmarked = 1u - sample_mark(sp);
    for (unsigned j = threadIdx.x; j < tile.len; j += blockDim.x) {
      flags[sp.global_begin + tile.base + j] = unmarked;
    }
  }
}

/// Stage 2: draws 0 .. distinct-1 of every span marked (blocks take spans in turn).
template <class Rule>
__global__ void __launch_bounds__(tile_threads)
    sample_first_draws(const sparse_span<Rule>* __restrict__ spans, std::uint32_t count,
                       unsigned* __restrict__ flags) {
  for (std::uint32_t s = blockIdx.x; s < count; s += gridDim.x) {
    const sparse_span<Rule> sp = spans[s];
    if (sp.n == 0 || sp.k == 0) { // raw spans keep nothing
      continue;
    }
    const std::uint64_t distinct = sample_target_of(sp.n, sp.k).distinct;
    const unsigned mark = sample_mark(sp);
    for (std::uint64_t j = threadIdx.x; j < distinct; j += blockDim.x) {
      flags[sp.global_begin + sp.rule.draw(j, sp.n)] = mark;
    }
  }
}

/// Stage 3, with the positions scanned from stage 2's flags: each span (one thread) takes draws
/// distinct, distinct+1, ... in order until `distinct` indices are marked.
template <class Rule>
__global__ void sample_complete(const sparse_span<Rule>* __restrict__ spans, std::uint32_t count,
                                const unsigned* __restrict__ positions,
                                unsigned* __restrict__ flags) {
  for (std::uint32_t s = blockIdx.x * blockDim.x + threadIdx.x; s < count;
       s += gridDim.x * blockDim.x) {
    const sparse_span<Rule> sp = spans[s];
    if (sp.n == 0 || sp.k == 0) {
      continue;
    }
    const sample_target target = sample_target_of(sp.n, sp.k);
    const unsigned mark = sample_mark(sp);
    const std::uint64_t flagged = positions[sp.global_begin + sp.n] - positions[sp.global_begin];
    std::uint64_t marked = target.complement ? sp.n - flagged : flagged;
    // a rule that cannot reach the count stops where the CPU's refuses it (sample_draw_limit)
    for (std::uint64_t j = target.distinct; marked < target.distinct && j < sample_draw_limit(sp.n);
         ++j) {
      unsigned& flag = flags[sp.global_begin + sp.rule.draw(j, sp.n)];
      if (flag != mark) {
        flag = mark;
        ++marked;
      }
    }
  }
}

} // namespace gradcomp::detail::cuda
