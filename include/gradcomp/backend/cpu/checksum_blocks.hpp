// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../detail/checksum.hpp"
#include "../../detail/dispatch.hpp"
#include "parallel.hpp"

#include <cstddef>
#include <cstdint>

namespace gradcomp::detail {

/// Checksum blocks per part when a call uses several threads (256 KB).
inline constexpr std::size_t checksum_min_blocks = 256;

/// The summed digests of blocks [first, end) of a message of `length` bytes at p
/// (detail/checksum.hpp): threads take contiguous block ranges; the sum is order-free, so every
/// thread count gives the same checksum.
template <>
struct backend_impl<cpu_tag, sum_checksum_blocks> {
  static std::uint64_t run(const cpu_policy& exec, const std::byte* p, std::size_t length,
                           std::uint64_t first, std::uint64_t end) {
    if (end <= first) {
      return 0;
    }
    return parallel_reduce(
        exec, static_cast<std::size_t>(end - first), checksum_min_blocks, std::uint64_t{0},
        [&](std::size_t b0, std::size_t b1) {
          return checksum_blocks(p, length, first + b0, first + b1);
        },
        [](std::uint64_t a, std::uint64_t b) { return a + b; });
  }
};

} // namespace gradcomp::detail
