// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../detail/bit_pack.hpp"
#include "../../detail/bits.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

/// @file
/// Table decoding of narrow codes (CPU). Where a span's codes are stored P = 8 / M >= 2 to a byte
/// (M = 1 or 2 bits; codes with a sign plane: M = 4, the P sign bits of the byte's codes joining
/// the index), one lookup of the byte gives the P decoded values, whether all P codes are valid,
/// and the largest |value| among them. A table holds coder.decode(code, scale) for one scale,
/// computed by the coder itself, so a decode through it is bit-identical to one that decodes
/// element by element; it pays off on spans far longer than the table (256 or 1024 entries), with
/// one scale for the whole span. Wider codes (one per byte) decode faster element by element,
/// where the unpacking and the coder's arithmetic vectorize, than by a lookup per element
/// (measured: 8- and 9-bit codes 1.6-3.4x slower through a table).

namespace gradcomp::detail {

/// Whether codes of width B of this coder decode through a code_table.
template <class Coder, unsigned B>
inline constexpr bool table_decodable = has_sign_plane<Coder> ? B == 5 : (B == 1 || B == 2);

template <class Coder, unsigned B>
class code_table {
  static_assert(table_decodable<Coder, B>);

public:
  static constexpr bool sign_plane = has_sign_plane<Coder>;
  static constexpr unsigned M = sign_plane ? B - 1 : B; ///< bits per code in the byte stream
  static constexpr unsigned P = 8 / M;                  ///< codes per byte
  static constexpr std::size_t entries = std::size_t{256} << (sign_plane ? P : 0);
  /// Spans shorter than this decode element by element (building costs `entries` decodes).
  static constexpr std::size_t min_elements = 16 * entries * P;

  /// Fills the table with coder.decode(code, scale) for every code of every entry.
  void build(const Coder& coder, float scale) noexcept {
    constexpr std::uint32_t mask = (1u << M) - 1u;
    for (std::size_t e = 0; e < entries; ++e) {
      bool all_valid = true;
      std::uint32_t max_bits = 0;
      for (unsigned t = 0; t < P; ++t) {
        std::uint32_t code = (static_cast<std::uint32_t>(e) >> (t * M)) & mask;
        if constexpr (sign_plane) {
          code |= ((static_cast<std::uint32_t>(e) >> (8 + t)) & 1u) << M;
        }
        const float v = coder.decode(code, scale);
        value_[e][t] = v;
        all_valid = all_valid && coder.valid(code);
        max_bits = std::max(max_bits, abs_bits(v));
      }
      valid_[e] = all_valid ? 1u : 0u;
      max_bits_[e] = max_bits;
    }
  }

  /// The entry indices of one whole block of 64 codes: `stream` is the block's 8M bytes of the
  /// magnitude (or only) stream, `signs` its 64 sign bits (sign plane only).
  void entries_of(const std::byte* stream, std::uint64_t signs,
                  std::uint16_t* index) const noexcept {
    for (unsigned i = 0; i < 8 * M; ++i) {
      std::uint32_t e = std::to_integer<std::uint32_t>(stream[i]);
      if constexpr (sign_plane) {
        e |= static_cast<std::uint32_t>((signs >> (i * P)) & ((1u << P) - 1u)) << 8;
      }
      index[i] = static_cast<std::uint16_t>(e);
    }
  }
  /// Whether every code of the block is valid.
  [[nodiscard]] bool valid(const std::uint16_t* index) const noexcept {
    std::uint32_t all = 1;
    for (unsigned i = 0; i < 8 * M; ++i) {
      all &= valid_[index[i]];
    }
    return all != 0;
  }
  /// The largest |decoded value| of the block (fp32 bits).
  [[nodiscard]] std::uint32_t max_bits(const std::uint16_t* index) const noexcept {
    std::uint32_t m = 0;
    for (unsigned i = 0; i < 8 * M; ++i) {
      m = std::max(m, max_bits_[index[i]]);
    }
    return m;
  }
  /// The block's 64 decoded values.
  void values(const std::uint16_t* index, float* out) const noexcept {
    for (unsigned i = 0; i < 8 * M; ++i) {
      for (unsigned t = 0; t < P; ++t) {
        out[i * P + t] = value_[index[i]][t];
      }
    }
  }

private:
  alignas(64) float value_[entries][P];
  std::uint32_t max_bits_[entries];
  std::uint8_t valid_[entries];
};

} // namespace gradcomp::detail
