// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../config.hpp"
#include "../random/stream_key.hpp"

#include <cstdint>

/// @file
/// Bernoulli decisions from integers (SPECS.md §2.2): "round up iff r < T" with r a uniform
/// 32-bit word and T = floor(p * 2^32), so P(up) = T / 2^32 differs from p by less than 2^-32
/// and the decision is bit-identical wherever p is computed with the same IEEE operations.
///
/// The word of element i (global index) is r_i = (a_i << 24) | b_i: a_i = bits8(i) of the
/// `rounding` stream, b_i = the low 24 bits of bits32(i) of the `rounding_low` stream. A decision
/// compares a_i with T >> 24 first and reads b_i only on equality (probability <= 1/256), so an
/// element costs about 8 random bits while the outcome is exactly that of the 32-bit compare.

namespace gradcomp::math {

/// A decision threshold T in [0, 2^32], kept as T = high 2^24 + low (high in [0, 256], low in
/// [0, 2^24)) so that both halves live in 32-bit lanes: backends compare the high random byte
/// with `high` and only on equality the low 24 bits with `low`.
struct threshold_word {
  std::uint32_t high = 0;
  std::uint32_t low = 0;
  /// T below 2^32 from its 32-bit value.
  [[nodiscard]] GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE static constexpr threshold_word
  of_u32(std::uint32_t t) noexcept {
    return {t >> 24, t & 0xffffffu};
  }
  [[nodiscard]] GRADCOMP_HOST_DEVICE constexpr std::uint64_t value() const noexcept {
    return (static_cast<std::uint64_t>(high) << 24) | low;
  }
};

/// floor(p * 2^32) for p in [0, 1], exact, in 32-bit float and integer steps (they vectorize):
/// p 2^8 = h + f with h = floor(p 2^8) and f in [0, 1) both exact in float, and
/// floor(p 2^32) = h 2^24 + floor(f 2^24), where f 2^24 is exact too.
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr threshold_word
probability_threshold(float p) noexcept {
  // signed conversions: both values are in [0, 2^24], and they vectorize without AVX-512
  const float scaled = p * 256.0f;
  const auto high = static_cast<std::int32_t>(scaled);
  const auto low = static_cast<std::int32_t>((scaled - static_cast<float>(high)) * 16777216.0f);
  return {static_cast<std::uint32_t>(high), static_cast<std::uint32_t>(low)};
}

/// The random word of one element, with its low 24 bits generated only when a decision needs
/// them. below(T) is "r_i < T".
struct element_random {
  std::uint32_t high8 = 0;            ///< a_i
  const random_stream* low = nullptr; ///< the rounding_low stream
  std::uint64_t index = 0;            ///< global element index

  [[nodiscard]] GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE bool
  below(threshold_word t) const noexcept {
    bool result = high8 < t.high; // decided by the high byte, except on a tie (p <= 1/256)
    if (__builtin_expect(high8 == t.high, 0)) {
      result = (low->bits32(index) & 0xffffffu) < t.low;
    }
    return result;
  }
  /// The whole 32-bit word (tests and references).
  [[nodiscard]] GRADCOMP_HOST_DEVICE std::uint32_t word() const noexcept {
    return (high8 << 24) | (low->bits32(index) & 0xffffffu);
  }
};

/// A fully materialized random word (reference code and tests).
struct word_random {
  std::uint32_t r = 0;
  [[nodiscard]] GRADCOMP_HOST_DEVICE constexpr bool below(threshold_word t) const noexcept {
    return static_cast<std::uint64_t>(r) < t.value();
  }
};

/// 1 with probability p (to within 2^-32), 0 otherwise.
template <class R>
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr std::uint32_t bernoulli(float p,
                                                                            const R& r) noexcept {
  return r.below(probability_threshold(p)) ? 1u : 0u;
}

} // namespace gradcomp::math
