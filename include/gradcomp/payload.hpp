// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string_view>

/// @file
/// Payload kinds: what a compressor produces for a span, before an encoding lays it out in bytes.
/// An encoding names the kinds it can carry; scheme<> rejects other pairings at compile time.

namespace gradcomp {

struct sparse_payload {};  ///< selected indices + their values (+ a value scale)
struct ternary_payload {}; ///< codes in {0, +1, -1} + one scale per span
struct levels_payload {};  ///< signed QSGD levels + one norm per span or bucket
struct sign_payload {};    ///< one sign bit per element (+ a scale for scaled sign)
struct natural_payload {}; ///< sign + power-of-two exponent per element
struct dense_payload {};   ///< one value per element (identity, stochastic rounding)
/// Selected indices + the selected values quantized with a payload of kind P (compositions).
template <class P>
struct sparse_quantized_payload {};

/// Wire ids of the compressors (header byte 6).
enum class compressor_id : std::uint8_t {
  identity = 1,
  topk = 2,
  random_k = 3,
  threshold_v = 4,
  adaptive_threshold = 5,
  terngrad = 6,
  qsgd = 7,
  sign_sgd = 8,
  natural = 9,
  stochastic_rounding = 10,
  scaled_sign = 11,
  composite = 12, ///< a sparsifier followed by a quantizer (compose<S, Q>)
  powersgd = 13,  ///< low-rank factors (lowrank/powersgd.hpp)
};

/// Wire ids of the encodings (header byte 7).
enum class encoding_id : std::uint8_t {
  sparse_coo_f32 = 1,
  sparse_coo_f16 = 2,
  sparse_coo_bf16 = 3,
  ternary_2bit = 4,
  qsgd_levels = 5,
  sign_bits = 6,
  natural_9bit = 7,
  natural_8bit = 8,
  dense_f32 = 9,
  dense_f16 = 10,
  dense_bf16 = 11,
  sparse_codes = 12, ///< indices + the kept values in a fixed-width code encoding
  // the same with Elias-Fano coded indices (encoding/index_coding.hpp)
  sparse_coo_f32_ef = 13,
  sparse_coo_f16_ef = 14,
  sparse_coo_bf16_ef = 15,
  sparse_codes_ef = 16,
  // the two rounds of a low-rank step (lowrank/lowrank_message.hpp)
  lowrank_p_f32 = 17,
  lowrank_q_f32 = 18,
};

} // namespace gradcomp
