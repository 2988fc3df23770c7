// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bits.hpp"
#include "checksum.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

/// @file
/// The checksum blocks (detail/checksum.hpp) of a message being written that its writers have
/// already hashed. A writer that owns a contiguous byte range of the message hashes the blocks
/// wholly inside it as soon as it has written them, while they are still in cache, flags them
/// here and hands in their digest sum; sealing the message then reads only the blocks no writer
/// covered (header, directory, span and part boundaries, spans written without hashing). The
/// checksum is the same as hashing the finished message: its block digests are summed in any
/// order. Writers of one message flag disjoint blocks, so threads may flag side by side.

namespace gradcomp::detail {

class prehashed_blocks {
public:
  /// Starts a message: no block hashed yet.
  void begin(std::span<const std::byte> message) {
    base_ = message.data();
    hashed_.assign(ceil_div(message.size(), checksum_block_bytes), 0);
    sum_ = 0;
  }
  /// No message (writers skip hashing).
  void clear() noexcept {
    base_ = nullptr;
    hashed_.clear();
    sum_ = 0;
  }

  [[nodiscard]] const std::byte* base() const noexcept { return base_; }
  /// The whole blocks of the message inside [lo, hi): [first, end) (empty when none is).
  [[nodiscard]] std::uint64_t first_whole_block(const std::byte* lo) const noexcept {
    return ceil_div(static_cast<std::size_t>(lo - base_), checksum_block_bytes);
  }
  [[nodiscard]] std::uint64_t end_whole_block(const std::byte* hi) const noexcept {
    return static_cast<std::size_t>(hi - base_) / checksum_block_bytes;
  }

  /// Blocks [first, end) are hashed (by one writer; their digests come in through add()).
  void mark(std::uint64_t first, std::uint64_t end) noexcept {
    for (std::uint64_t b = first; b < end; ++b) {
      hashed_[b] = 1;
    }
  }
  /// Adds the digest sum of blocks a writer hashed and marked (after its threads are done).
  void add(std::uint64_t digest_sum) noexcept { sum_ += digest_sum; }

  /// The digest sum of blocks [first, end), which must hold every hashed block: the hashed
  /// ones' from add(), the others' through rest(first, end) over each run of unhashed blocks.
  template <class Rest>
  [[nodiscard]] std::uint64_t digest_sum(std::uint64_t first, std::uint64_t end,
                                         const Rest& rest) const {
    std::uint64_t sum = sum_;
    std::uint64_t b = first;
    while (b < end) {
      if (hashed_[b] != 0) {
        ++b;
        continue;
      }
      std::uint64_t run_end = b + 1;
      while (run_end < end && hashed_[run_end] == 0) {
        ++run_end;
      }
      sum += rest(b, run_end);
      b = run_end;
    }
    return sum;
  }

private:
  const std::byte* base_ = nullptr;
  std::vector<std::uint8_t> hashed_; ///< per block: 1 when a writer hashed it
  std::uint64_t sum_ = 0;
};

} // namespace gradcomp::detail
