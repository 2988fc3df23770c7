// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../config.hpp"

#include <cstddef>

/// @file
/// The canonical summation order that makes l1/l2 scales bit-identical on every backend
/// (SPECS.md §2.2). For a group of m values v_i = f(x_i) in double:
///  - chunks of 2048 consecutive elements (the last may be shorter);
///  - in a chunk, 32 lanes (a warp; four independent 8-wide accumulators on a CPU, so the adds
///    are not latency-bound): lane j adds the elements with (i mod 32) == j in index order,
///    starting from +0.0; the chunk sum is the balanced pairwise tree over the lanes,
///    (((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7))) + ... (combine_lanes);
///  - chunk sums combine as a balanced tree: sum(lo, hi) = sum(lo, mid) + sum(mid, hi) with
///    mid = lo + (hi - lo) / 2; an empty group sums to +0.0.
/// Squares of floats are exact in double, so fused multiply-add contraction cannot change them.

namespace gradcomp::math {

inline constexpr std::size_t canonical_chunk = 2048;
inline constexpr std::size_t canonical_lanes = 32;

enum class sum_kind { none, value, square, absolute };

GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr double summand(float v,
                                                                   sum_kind kind) noexcept {
  const double d = static_cast<double>(v);
  return kind == sum_kind::square ? d * d : (kind == sum_kind::absolute ? (d < 0 ? -d : d) : d);
}
/// The balanced pairwise tree over the canonical_lanes lane sums (the array is overwritten), in
/// double for the scales and in float for the low-rank products (backend/cpu/lowrank_kernels.hpp).
template <class T>
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr T combine_lanes(T* l) noexcept {
  for (std::size_t width = canonical_lanes / 2; width > 0; width /= 2) {
    for (std::size_t j = 0; j < width; ++j) {
      l[j] = l[2 * j] + l[2 * j + 1];
    }
  }
  return l[0];
}

} // namespace gradcomp::math
