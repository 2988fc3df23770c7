// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../detail/checksum.hpp"
#include "../../detail/dispatch.hpp"
#include "../../detail/prehashed_blocks.hpp"
#include "parallel.hpp"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace gradcomp::detail {

/// Checksum blocks per part when a call uses several threads (256 KB).
inline constexpr std::size_t checksum_min_blocks = 256;
/// Whole blocks hashed side by side.
inline constexpr std::size_t checksum_interleave = 8;
/// How far ahead of the blocks being hashed their successors are fetched (in blocks).
inline constexpr std::size_t checksum_prefetch_blocks = 4 * checksum_interleave;

#if defined(__GNUC__)
/// checksum_eight_blocks() with GCC/Clang vector extensions (little-endian hosts).
template <bool Prefetch>
inline std::uint64_t checksum_eight_blocks_vectors(const std::byte* p,
                                                   std::uint64_t index) noexcept {
  using u64x4 = std::uint64_t __attribute__((vector_size(32)));
  const checksum_lanes start;
  const u64x4 seed = {start.lane[0], start.lane[1], start.lane[2], start.lane[3]};
  u64x4 lanes[checksum_interleave];
  for (std::size_t k = 0; k < checksum_interleave; ++k) {
    lanes[k] = seed;
  }
  for (std::size_t row = 0; row < checksum_block_bytes; row += 32) {
    // eight streams 1 KB apart defeat the hardware prefetcher: fetch the blocks 32 KB ahead
    // into L2, four 64-byte lines per row (eight blocks' worth over the 32 rows)
    if constexpr (Prefetch) {
      const std::byte* ahead = p + checksum_prefetch_blocks * checksum_block_bytes + 8 * row;
      for (std::size_t line = 0; line < 4; ++line) {
        __builtin_prefetch(ahead + 64 * line, 0, 2);
      }
    }
    GRADCOMP_UNROLL(8)
    for (std::size_t k = 0; k < checksum_interleave; ++k) {
      u64x4 w;
      std::memcpy(&w, p + k * checksum_block_bytes + row, sizeof w);
      const u64x4 v = lanes[k] ^ w;
      lanes[k] = ((v << 29) | (v >> 35)) * checksum_p1; // rotl64(v, 29) * p1, as row()
    }
  }
  std::uint64_t sum = 0;
  for (std::size_t k = 0; k < checksum_interleave; ++k) {
    checksum_lanes h;
    for (unsigned l = 0; l < 4; ++l) {
      h.lane[l] = lanes[k][l];
    }
    sum += h.digest(index + k, checksum_block_bytes);
  }
  return sum;
}
#else
template <bool Prefetch>
inline std::uint64_t checksum_eight_blocks_vectors(const std::byte*, std::uint64_t) noexcept {
  return 0; // never called: checksum_eight_blocks() takes the scalar loop
}
#endif

/// The summed digests of the eight whole blocks at p, whose first has index `index`: the same
/// as checksum_block() on each, with each block's four lanes held as one vector, so that the
/// multiply-rotate chains of eight blocks overlap (one block at a time waits on its chains'
/// latency; scalar lanes for several blocks do not fit the registers). About 5x the one-block
/// loop on data in cache, the plain read's rate on data in memory (the prefetch below).
/// Prefetch: fetch the blocks that follow (a message in memory; not for blocks just written).
template <bool Prefetch = true>
inline std::uint64_t checksum_eight_blocks(const std::byte* p, std::uint64_t index) noexcept {
  constexpr bool vectors = // GCC/Clang vector extensions hold the little-endian words
#if defined(__GNUC__)
      std::endian::native == std::endian::little;
#else
      false;
#endif
  std::uint64_t sum = 0;
  if constexpr (vectors) {
    sum = checksum_eight_blocks_vectors<Prefetch>(p, index);
  } else {
    for (std::size_t k = 0; k < checksum_interleave; ++k) {
      sum += checksum_block(p + k * checksum_block_bytes, checksum_block_bytes, index + k);
    }
  }
  return sum;
}

/// checksum_blocks() (detail/checksum.hpp) with whole blocks hashed eight at a time.
inline std::uint64_t checksum_blocks_interleaved(const std::byte* p, std::size_t length,
                                                 std::uint64_t first, std::uint64_t end) noexcept {
  end = std::min<std::uint64_t>(end, ceil_div(length, checksum_block_bytes));
  const std::uint64_t whole_end = std::min<std::uint64_t>(end, length / checksum_block_bytes);
  std::uint64_t sum = 0;
  std::uint64_t b = first;
  for (; b + checksum_interleave <= whole_end; b += checksum_interleave) {
    sum += checksum_eight_blocks(p + b * checksum_block_bytes, b);
  }
  return sum + checksum_blocks(p, length, b, end);
}

/// One writer's (or reader's) contiguous byte range of a message (detail/prehashed_blocks.hpp):
/// as the range grows, its whole blocks are hashed eight at a time while still in cache, and
/// flagged; finish() hashes the rest of its whole blocks and returns their digest sum. A null
/// `blocks`, or one with no message begun, makes every call a no-op.
class hashing_cursor {
public:
  hashing_cursor(prehashed_blocks* blocks, const std::byte* start) noexcept
      : blocks_(blocks != nullptr && blocks->base() != nullptr ? blocks : nullptr),
        next_(blocks_ != nullptr ? blocks_->first_whole_block(start) : 0) {}

  /// The range is written up to `end`: hashes its whole groups of eight blocks not hashed yet.
  void written_to(const std::byte* end) noexcept {
    if (blocks_ == nullptr) {
      return;
    }
    const std::uint64_t stop = blocks_->end_whole_block(end);
    for (; next_ + checksum_interleave <= stop; next_ += checksum_interleave) {
      sum_ += checksum_eight_blocks<false>(block(next_), next_);
      blocks_->mark(next_, next_ + checksum_interleave);
    }
  }
  /// The range ends at `end`: hashes its remaining whole blocks; returns the digest sum of all
  /// the blocks this writer hashed.
  std::uint64_t finish(const std::byte* end) noexcept {
    if (blocks_ == nullptr) {
      return 0;
    }
    written_to(end);
    const std::uint64_t stop = blocks_->end_whole_block(end);
    for (; next_ < stop; ++next_) {
      sum_ += checksum_block(block(next_), checksum_block_bytes, next_);
      blocks_->mark(next_, next_ + 1);
    }
    return sum_;
  }

private:
  [[nodiscard]] const std::byte* block(std::uint64_t b) const noexcept {
    return blocks_->base() + b * checksum_block_bytes;
  }
  prehashed_blocks* blocks_;
  std::uint64_t next_;
  std::uint64_t sum_ = 0;
};

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
          return checksum_blocks_interleaved(p, length, first + b0, first + b1);
        },
        [](std::uint64_t a, std::uint64_t b) { return a + b; });
  }
};

} // namespace gradcomp::detail
