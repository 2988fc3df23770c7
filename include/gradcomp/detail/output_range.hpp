// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../core/float16.hpp"
#include "../error.hpp"
#include "../granularity/span_plan.hpp"
#include "bits.hpp"
#include "scan.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

/// @file
/// Whether decoded values are sure to fit an output type: the bound that lets a decode skip the
/// element-by-element overflow check (check_output_range, below).

namespace gradcomp::detail {

/// True when values of magnitude at most `decoded_bits` (fp32 bits), written into T, or added
/// in fp32 to values of magnitude at most `held_bits` and converted to T, cannot give +-Inf.
/// Conservative: false only means the exact check must run.
template <gradient_value T>
[[nodiscard]] constexpr bool surely_fits(std::uint32_t decoded_bits,
                                         std::uint32_t held_bits) noexcept {
  if (held_bits == 0) {
    return decoded_bits < value_traits<T>::overflow_abs_bits;
  }
  if (decoded_bits >= inf_abs_bits || held_bits >= inf_abs_bits) {
    return false;
  }
  // |a + b| <= |a| + |b|; the margin covers the double rounding of that bound (2^-53 relative),
  // and a bound at or below T's largest finite value converts to a finite T
  const double bound =
      static_cast<double>(bits_float(decoded_bits)) + static_cast<double>(bits_float(held_bits));
  return bound <=
         static_cast<double>(bits_float(value_traits<T>::max_finite_bits)) * (1.0 - 0x1p-40);
}

/// Whether writing the decoded value v into T (or, with `add`, held + v in fp32) gives +-Inf
/// from a finite output element: the exact per-element check, on both backends. An element that
/// already held NaN or Inf is the caller's, not an overflow of the message.
template <gradient_value T>
[[nodiscard]] GRADCOMP_HOST_DEVICE constexpr bool write_overflows(float held, float v,
                                                                  bool add) noexcept {
  const float r = add ? held + v : v;
  return is_non_finite(to_float(from_float<T>(r))) && !(add && is_non_finite(held));
}

/// The exact check over n decoded values v written into `held` (assigned, or with `add` added):
/// errc::value_out_of_range naming the first element that would overflow T in span_name().
template <gradient_value T, class Name>
void require_writes_fit(const T* held, const float* v, std::size_t n, bool add,
                        const Name& span_name) {
  for (std::size_t i = 0; i < n; ++i) {
    const float a = add ? to_float(held[i]) : 0.0f;
    require(!write_overflows<T>(a, v[i], add), errc::value_out_of_range, [&] {
      return std::string(add ? "the sum of a decoded value and the output" : "a decoded value") +
             " in " + span_name() + " at element " + std::to_string(i) +
             " overflows the output's " + std::string(value_traits<T>::name);
    });
  }
}

/// Before a decode into T writes anything: every decoded value (or, with `add`, its fp32 sum
/// with what out holds) must be finite in T. The magnitudes measured while validating
/// (decoded_max[s], fp32 bits) and max |out| for a sum settle almost every span of the plan; a
/// span they cannot settle is decoded by decode_span(s, dst) into `scratch` and checked element
/// by element. Errors: value_out_of_range naming the span and element (an element of out that
/// is already NaN or Inf is not the message's doing and is let through).
template <class Exec, gradient_value T, class DecodeSpan, class Name>
void check_output_range(const Exec& exec, const std::vector<span_desc>& plan,
                        const std::vector<std::uint32_t>& decoded_max, std::span<const T> out,
                        bool add, std::vector<float>& scratch, const DecodeSpan& decode_span,
                        const Name& span_name) {
  for (std::size_t s = 0; s < plan.size(); ++s) {
    const span_desc& d = plan[s];
    const T* held = out.data() + d.begin;
    const std::uint32_t held_bits = add ? scan_max_abs(exec, held, d.size) : 0;
    if (surely_fits<T>(decoded_max[s], held_bits)) {
      continue;
    }
    scratch.resize(d.size);
    decode_span(s, scratch.data());
    require_writes_fit(held, scratch.data(), d.size, add, [&] { return span_name(s); });
  }
}

} // namespace gradcomp::detail
