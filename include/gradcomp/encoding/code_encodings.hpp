// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../core/float16.hpp"
#include "../payload.hpp"

#include <string_view>
#include <type_traits>

/// @file
/// The fixed-width code encodings. Each lays a span out as
///     [num_scales x f32 scale][codes packed at `bits` per element, LSB first]
/// (encoding/packed_span.hpp); they differ in the payload kind they accept and hence in the
/// per-element code the compressor's coder produces for them.

namespace gradcomp {

/// 2 bits per element (0, +s, -s) + one fp32 scale per span (TernGrad).
struct ternary_2bit {
  static constexpr encoding_id id = encoding_id::ternary_2bit;
  static constexpr std::string_view name = "ternary2";
  template <class P>
  static constexpr bool accepts = std::is_same_v<P, ternary_payload>;
  friend constexpr bool operator==(ternary_2bit, ternary_2bit) = default;
};

/// 1 sign bit + ceil(log2(s+1)) level bits per element + one fp32 norm per span or bucket (QSGD).
struct qsgd_levels {
  static constexpr encoding_id id = encoding_id::qsgd_levels;
  static constexpr std::string_view name = "levels";
  template <class P>
  static constexpr bool accepts = std::is_same_v<P, levels_payload>;
  friend constexpr bool operator==(qsgd_levels, qsgd_levels) = default;
};

/// 1 bit per element (1 = negative) + one fp32 scale per span for scaled sign (none for sign).
struct sign_bits {
  static constexpr encoding_id id = encoding_id::sign_bits;
  static constexpr std::string_view name = "signbits";
  template <class P>
  static constexpr bool accepts = std::is_same_v<P, sign_payload>;
  friend constexpr bool operator==(sign_bits, sign_bits) = default;
};

/// Natural-compression codes: Bits = 9 (sign + full fp32 exponent, the paper's format) or 8 (sign
/// + 7-bit exponent window 2^-110 ... 2^16, see math/natural.hpp). No scale.
template <unsigned Bits>
struct natural_codes {
  static_assert(Bits == 8 || Bits == 9, "natural_codes<Bits>: Bits must be 8 or 9");
  static constexpr encoding_id id =
      Bits == 9 ? encoding_id::natural_9bit : encoding_id::natural_8bit;
  static constexpr std::string_view name = Bits == 9 ? "nat9" : "nat8";
  static constexpr unsigned bits = Bits;
  template <class P>
  static constexpr bool accepts = std::is_same_v<P, natural_payload>;
  friend constexpr bool operator==(natural_codes, natural_codes) = default;
};

/// One value per element as fp32, fp16 or bf16 (identity: round to nearest even; stochastic
/// rounding: the compressor's own rounding). No scale.
template <gradient_value V>
struct dense {
  static constexpr encoding_id id = std::is_same_v<V, float>  ? encoding_id::dense_f32
                                    : std::is_same_v<V, half> ? encoding_id::dense_f16
                                                              : encoding_id::dense_bf16;
  static constexpr std::string_view name = std::is_same_v<V, float>  ? "f32"
                                           : std::is_same_v<V, half> ? "f16"
                                                                     : "bf16";
  using value_type = V;
  template <class P>
  static constexpr bool accepts = std::is_same_v<P, dense_payload>;
  friend constexpr bool operator==(dense, dense) = default;
};

} // namespace gradcomp
