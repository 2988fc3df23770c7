// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../detail/bits.hpp"

#include <cstddef>
#include <cstdint>

/// @file
/// The 16-byte header every sparse span starts with (sparse_coo and sparse_codes), LE:
///     offset  size
///      0      8    count k of kept values
///      8      1    the index coding's parameter (encoding/index_coding.hpp): the index width W
///                  in bytes (sparse_index_bytes(n)), or Elias-Fano's number of low bits
///      9      1    flags: bit 0 = indices implied (regenerated from the shared seed),
///                  bit 1 = indices Elias-Fano coded
///     10      2    reserved, 0
///     12      4    f32 value scale (decoded value = stored value * scale; 1 unless random-k's n/k)

namespace gradcomp::detail {

/// The index width of a span of n elements: 2 bytes up to 65536, 4 up to 2^32, else 8.
[[nodiscard]] constexpr unsigned sparse_index_bytes(std::size_t n) noexcept {
  return n <= 65536u ? 2u : (static_cast<std::uint64_t>(n) <= (std::uint64_t{1} << 32) ? 4u : 8u);
}

struct sparse_span_header {
  static constexpr std::size_t bytes = 16;
  static constexpr std::uint8_t flag_implied = 1;
  static constexpr std::uint8_t flag_elias_fano = 2;

  std::uint64_t count = 0;
  std::uint8_t index_bytes = 0;
  std::uint8_t flags = 0;
  std::uint16_t reserved = 0;
  float value_scale = 1.0f;

  /// The header a writer gives a span keeping k values, with the index coding's parameter
  /// and flag (encoding/index_coding.hpp).
  [[nodiscard]] static sparse_span_header make(std::size_t k, unsigned parameter,
                                               std::uint8_t coding_flag, bool implied,
                                               float value_scale) noexcept {
    return {k, static_cast<std::uint8_t>(parameter),
            static_cast<std::uint8_t>(coding_flag | (implied ? flag_implied : 0)), 0, value_scale};
  }
  [[nodiscard]] bool implied() const noexcept { return (flags & flag_implied) != 0; }

  void write(std::byte* p) const noexcept {
    store_le<std::uint64_t>(p, count);
    store_le<std::uint8_t>(p + 8, index_bytes);
    store_le<std::uint8_t>(p + 9, flags);
    store_le<std::uint16_t>(p + 10, reserved);
    store_le<float>(p + 12, value_scale);
  }
  /// Reads the fields as they are; the encodings' checks say which values are valid.
  [[nodiscard]] static sparse_span_header read(const std::byte* p) noexcept {
    return {load_le<std::uint64_t>(p), load_le<std::uint8_t>(p + 8), load_le<std::uint8_t>(p + 9),
            load_le<std::uint16_t>(p + 10), load_le<float>(p + 12)};
  }
};

} // namespace gradcomp::detail
