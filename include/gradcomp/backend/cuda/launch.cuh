// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cuda_runtime.h>

/// @file
/// What every batched kernel of the CUDA backend shares: block and tile sizes, grid sizing, and
/// the span lookup. Every kernel covers all spans of a message in one launch: work items
/// (chunks, groups, tiles, blocks) are numbered across spans, and a thread finds its span by
/// binary search in a prefix table, so the launch count does not grow with the number of layers.

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

} // namespace gradcomp::detail::cuda
