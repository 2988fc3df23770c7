// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../concepts.hpp"
#include "../detail/bits.hpp"
#include "../error.hpp"
#include "../random/stream_key.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

/// @file
/// What compressors share: the per-span call context and exact arithmetic for "k from a ratio".

namespace gradcomp {

/// Everything a compressor may need about the span it compresses.
struct span_context {
  std::uint64_t global_begin = 0; ///< offset of the span in the flat buffer
  std::uint64_t seed = 0;
  std::uint64_t stream_word = 0;  ///< stream_key::stream_word()
  std::uint32_t max_abs_bits = 0; ///< max |x| over the span, as float bits (already finite)

  [[nodiscard]] random_stream rounding() const noexcept {
    return {seed, stream_word, random_purpose::rounding};
  }
  /// The subset stream; `shared` drops the rank so that every worker draws the same subset.
  [[nodiscard]] random_stream subset(bool shared) const noexcept {
    const std::uint64_t rank_mask = std::uint64_t{stream_key::max_rank} << 4;
    return {seed, shared ? (stream_word & ~rank_mask) : stream_word, random_purpose::subset};
  }
};

namespace detail {

/// Ratios are held exactly as parts per billion, so k = ceil(ratio * n) is computed in integers:
/// 0.07 of 100 is 7, not the 8 that binary floating point gives.
inline constexpr std::uint64_t ratio_denominator = 1'000'000'000;

inline std::uint64_t ratio_ppb(double ratio, const char* who) {
  require(std::isfinite(ratio) && ratio > 0.0 && ratio <= 1.0, errc::invalid_parameter,
          std::string(who) + ".ratio must be in (0, 1], got " + std::to_string(ratio));
  const auto ppb = static_cast<std::uint64_t>(std::llround(ratio * 1e9));
  require(ppb > 0, errc::invalid_parameter,
          std::string(who) + ".ratio " + std::to_string(ratio) +
              " is below the 1e-9 resolution of ratios");
  return ppb;
}
/// k = ceil(ppb * n / 1e9), clamped to [1, n] for n > 0 (0 for an empty span).
[[nodiscard]] inline std::size_t count_from_ppb(std::uint64_t ppb, std::size_t n) noexcept {
  if (n == 0) {
    return 0;
  }
  // ppb * n / 1e9 with n = q 1e9 + r: ppb q + ppb r / 1e9, every product within 64 bits
  const std::uint64_t q = n / ratio_denominator, r = n % ratio_denominator;
  auto k =
      static_cast<std::size_t>(ppb * q + (ppb * r + ratio_denominator - 1) / ratio_denominator);
  return k < 1 ? 1 : (k > n ? n : k);
}
[[nodiscard]] inline std::uint64_t double_word(double v) noexcept {
  return bit_cast<std::uint64_t>(v);
}

} // namespace detail
} // namespace gradcomp
