// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../core/float16.hpp"
#include "../error.hpp"
#include "bits.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

/// @file
/// The checks of a call's buffer sizes (errc::size_mismatch, errc::buffer_too_small), and the
/// encode-side checks of one span's gradient values, named by span_name(): a NaN or Inf
/// (errc::non_finite_input), and a finite value that the wire's value type cannot hold
/// (errc::value_out_of_range) instead of a message the decoder would refuse. Each scans the
/// elements only when the span's max |x| (fp32 bits, measured by the encoder's scan) says it
/// fails, to name the first offending element.

namespace gradcomp::detail {

/// A buffer of n elements where the layout has `expected`: errc::size_mismatch naming `what`.
inline void require_elements(const char* what, std::size_t n, std::size_t expected) {
  require(n == expected, errc::size_mismatch, [&] {
    return std::string(what) + " has " + std::to_string(n) + " elements, layout has " +
           std::to_string(expected);
  });
}

/// An output of `have` bytes for a message of `needed`: errc::buffer_too_small.
inline void require_room(std::size_t needed, std::size_t have) {
  require(have >= needed, errc::buffer_too_small, [&] {
    return "message needs " + std::to_string(needed) + " bytes, output has " +
           std::to_string(have) + " (size it with max_encoded_bytes())";
  });
}

template <class T, class Name>
void require_finite(std::uint32_t max_bits, const T* x, std::size_t n, std::uint64_t global_begin,
                    const Name& span_name) {
  if (max_bits < inf_abs_bits) {
    return;
  }
  std::size_t i = 0;
  while (i < n && !is_non_finite(to_float(x[i]))) {
    ++i;
  }
  fail(errc::non_finite_input, "non-finite gradient value (NaN or Inf) in " + span_name() +
                                   " at element " + std::to_string(i) + " (global index " +
                                   std::to_string(global_begin + i) + ")");
}

template <class T, class Name>
void require_in_range(std::uint32_t max_bits, std::uint32_t overflow_bits, const T* x,
                      const Name& span_name) {
  if (max_bits < overflow_bits) {
    return;
  }
  std::size_t i = 0;
  while (abs_bits(to_float(x[i])) < overflow_bits) {
    ++i;
  }
  fail(errc::value_out_of_range, "value " + std::to_string(to_float(x[i])) + " in " + span_name() +
                                     " at element " + std::to_string(i) +
                                     " overflows the encoding's value type");
}

} // namespace gradcomp::detail
