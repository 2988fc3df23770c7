// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../config.hpp"
#include "../error.hpp"
#include "philox.hpp"

#include <cstdint>
#include <string>

/// @file
/// How gradcomp names a random stream (SPECS.md §2.2). Philox's key is the 64-bit user seed; its
/// 128-bit counter is (block index : 64 bits, stream : 64 bits), where the block index is derived
/// from the *global* element index in the flat gradient buffer and the stream packs
///
///     bits 63..24  step      (40 bits)
///     bits 23..4   rank      (20 bits)
///     bit  3       role      (worker 0, master 1)
///     bits 2..0    purpose   (what the bits decide)
///
/// Nothing depends on threads, spans or chunking, so layer-wise and entire-model compression of an
/// elementwise operator make identical random decisions, and CPU and GPU agree bit for bit.

namespace gradcomp {

enum class role : std::uint8_t { worker = 0, master = 1 };

/// What a random word is used for; distinct purposes never share a counter.
enum class random_purpose : std::uint8_t {
  rounding = 0,
  subset = 1,
  rounding_low = 2,
  lowrank_start = 3, ///< starting (or restarting) columns of a low-rank factor
};

/// Identifies one compression call: whose gradient, which step, which seed.
struct stream_key {
  std::uint64_t seed = 0;
  std::uint64_t step = 0;
  std::uint32_t rank = 0;
  gradcomp::role role = role::worker;

  static constexpr std::uint64_t max_step = (std::uint64_t{1} << 40) - 1;
  static constexpr std::uint32_t max_rank = (1u << 20) - 1;

  /// Throws errc::invalid_parameter when step or rank do not fit their bit fields.
  void validate() const {
    detail::require(step <= max_step, errc::invalid_parameter,
                    "stream_key.step " + std::to_string(step) + " exceeds 2^40-1");
    detail::require(rank <= max_rank, errc::invalid_parameter,
                    "stream_key.rank " + std::to_string(rank) + " exceeds 2^20-1");
  }
  /// The packed 64-bit stream word (purpose bits zero).
  [[nodiscard]] constexpr std::uint64_t stream_word() const noexcept {
    return (step << 24) | (static_cast<std::uint64_t>(rank & max_rank) << 4) |
           (static_cast<std::uint64_t>(role) << 3);
  }
  /// The key a message header carries (its seed and stream word), unpacked.
  [[nodiscard]] static constexpr stream_key unpack(std::uint64_t seed,
                                                   std::uint64_t word) noexcept {
    return {seed, word >> 24, static_cast<std::uint32_t>((word >> 4) & max_rank),
            static_cast<gradcomp::role>((word >> 3) & 1u)};
  }
  friend constexpr bool operator==(const stream_key&, const stream_key&) = default;
};

/// A random stream bound to a seed, a packed stream word and a purpose. Element `i` (global flat
/// index) reads 32 bits from lane i%4 of block i/4, 64 bits from lanes 2(i%2), 2(i%2)+1 of
/// block i/2, or 8 bits from the lane-major groups of eight blocks described at bits8().
struct random_stream {
  philox_key key{};
  std::uint32_t stream_lo = 0;
  std::uint32_t stream_hi = 0;

  GRADCOMP_HOST_DEVICE constexpr random_stream() noexcept = default;
  GRADCOMP_HOST_DEVICE constexpr random_stream(std::uint64_t seed, std::uint64_t stream_word,
                                               random_purpose purpose) noexcept
      : key{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)},
        stream_lo(static_cast<std::uint32_t>(stream_word | static_cast<std::uint64_t>(purpose))),
        stream_hi(static_cast<std::uint32_t>(stream_word >> 32)) {}

  /// The same seed and stream word, another purpose.
  [[nodiscard]] GRADCOMP_HOST_DEVICE constexpr random_stream
  with_purpose(random_purpose p) const noexcept {
    random_stream r = *this;
    r.stream_lo = (stream_lo & ~7u) | static_cast<std::uint32_t>(p);
    return r;
  }
  [[nodiscard]] GRADCOMP_HOST_DEVICE constexpr philox_counter
  block(std::uint64_t block_index) const noexcept {
    return philox4x32_10({static_cast<std::uint32_t>(block_index),
                          static_cast<std::uint32_t>(block_index >> 32), stream_lo, stream_hi},
                         key);
  }
  /// 32 uniform bits for global element i.
  [[nodiscard]] GRADCOMP_HOST_DEVICE constexpr std::uint32_t
  bits32(std::uint64_t i) const noexcept {
    return block(i >> 2)[i & 3u];
  }
  /// 8 uniform bits for global element i. Elements come in groups of 128 that share eight
  /// consecutive blocks, lane-major (the layout of SIMD registers that each hold one lane of
  /// eight blocks): element 128g + 32l + 4q + b is byte b of lane l of block 8g + q.
  [[nodiscard]] GRADCOMP_HOST_DEVICE constexpr std::uint32_t bits8(std::uint64_t i) const noexcept {
    const std::uint64_t q = (i >> 2) & 7u;
    const auto lane = static_cast<unsigned>((i >> 5) & 3u);
    return (block(((i >> 7) << 3) + q)[lane] >> (8u * static_cast<unsigned>(i & 3u))) & 0xffu;
  }
  /// 64 uniform bits for global element i.
  [[nodiscard]] GRADCOMP_HOST_DEVICE constexpr std::uint64_t
  bits64(std::uint64_t i) const noexcept {
    const philox_counter r = block(i >> 1);
    const unsigned lane = static_cast<unsigned>(i & 1u) * 2u;
    return (static_cast<std::uint64_t>(r[lane]) << 32) | r[lane + 1u];
  }
};

} // namespace gradcomp
