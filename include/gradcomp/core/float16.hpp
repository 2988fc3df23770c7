// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../config.hpp"
#include "../detail/bits.hpp"

#include <cstdint>
#include <string_view>
#include <type_traits>

/// @file
/// 16-bit floating-point storage types for mixed-precision gradients. They only store bits and
/// convert to and from float with exact round-to-nearest-even; all arithmetic happens in fp32.
/// The layout (one uint16_t) matches CUDA's __half and __nv_bfloat16, so the CUDA backend can
/// reinterpret buffers of these types without copies.

namespace gradcomp {

/// IEEE 754 binary16 (1 sign, 5 exponent, 10 mantissa bits), storage only.
struct half {
  std::uint16_t bits = 0;
  friend constexpr bool operator==(half, half) = default;
};
/// bfloat16 (1 sign, 8 exponent, 7 mantissa bits), storage only.
struct bfloat16 {
  std::uint16_t bits = 0;
  friend constexpr bool operator==(bfloat16, bfloat16) = default;
};

/// Exact float -> bfloat16, round to nearest even; NaN stays a (quiet) NaN.
GRADCOMP_HOST_DEVICE constexpr bfloat16 to_bfloat16(float f) noexcept {
  const std::uint32_t x = detail::float_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) {
    return bfloat16{static_cast<std::uint16_t>((x >> 16) | 0x0040u)};
  }
  const std::uint32_t bias = 0x7fffu + ((x >> 16) & 1u);
  return bfloat16{static_cast<std::uint16_t>((x + bias) >> 16)};
}
GRADCOMP_HOST_DEVICE constexpr float to_float(bfloat16 b) noexcept {
  return detail::bits_float(static_cast<std::uint32_t>(b.bits) << 16);
}

/// Exact float -> binary16, round to nearest even, including subnormals; overflow gives +-Inf,
/// NaN a quiet NaN. Branch-free (selects only), so loops of conversions vectorize:
///  - normal results: rebias the exponent, add 0xfff plus the lowest kept bit, drop 13 bits;
///  - below 2^-14: |f| + 0.5 puts the binary16 subnormal unit 2^-24 at the last place of a float
///    in [0.5, 1), and the FPU's round-to-nearest-even does the rounding (the sum is normal, so
///    flush-to-zero modes cannot change it);
///  - |f| >= 65520 (the midpoint above 65504, which ties to even, up): Inf; NaN: 0x7e00.
GRADCOMP_HOST_DEVICE constexpr half to_half(float f) noexcept {
  const std::uint32_t x = detail::float_bits(f);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  const std::uint32_t ax = x & 0x7fffffffu;
  const std::uint32_t normal = (ax - (112u << 23) + 0xfffu + ((ax >> 13) & 1u)) >> 13;
  const bool small = ax < 0x38800000u;
  const std::uint32_t subnormal =
      detail::float_bits(detail::bits_float(small ? ax : 0u) + 0.5f) - 0x3f000000u;
  const std::uint32_t special = ax > 0x7f800000u ? 0x7e00u : 0x7c00u;
  std::uint32_t h = small ? subnormal : normal;
  h = ax >= 0x477ff000u ? special : h;
  return half{static_cast<std::uint16_t>(sign | h)};
}
/// Exact binary16 -> float, branch-free like to_half(): subnormals as m * 2^-24 (exact), Inf
/// and NaN (payload kept) with the float exponent all ones, normals by rebiasing.
GRADCOMP_HOST_DEVICE constexpr float to_float(half h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h.bits & 0x8000u) << 16;
  const std::uint32_t e = (h.bits >> 10) & 0x1fu;
  const std::uint32_t m = h.bits & 0x3ffu;
  const std::uint32_t subnormal =
      detail::float_bits(static_cast<float>(m) * 5.9604644775390625e-08f);
  const std::uint32_t normal = ((e + 112u) << 23) | (m << 13);
  const std::uint32_t special = 0x7f800000u | (m << 13);
  // masks rather than selects: GCC if-converts these, not the nested conditional
  const std::uint32_t is_subnormal = 0u - static_cast<std::uint32_t>(e == 0);
  const std::uint32_t is_special = 0u - static_cast<std::uint32_t>(e == 31);
  const std::uint32_t mag =
      (subnormal & is_subnormal) | (special & is_special) | (normal & ~(is_subnormal | is_special));
  return detail::bits_float(sign | mag);
}
GRADCOMP_HOST_DEVICE constexpr float to_float(float f) noexcept {
  return f;
}

/// The gradient value types gradcomp accepts, with their wire ids.
enum class value_type_id : std::uint8_t { f32 = 1, f16 = 2, bf16 = 3 };

template <class T>
struct value_traits; // only the three types below are gradient value types
template <>
struct value_traits<float> {
  static constexpr value_type_id id = value_type_id::f32;
  static constexpr std::string_view name = "f32";
  /// The smallest |x| (as fp32 bits) that converts to +-Inf: here Inf itself.
  static constexpr std::uint32_t overflow_abs_bits = 0x7f800000u;
  /// The largest finite value, as fp32 bits.
  static constexpr std::uint32_t max_finite_bits = 0x7f7fffffu;
};
template <>
struct value_traits<half> {
  static constexpr value_type_id id = value_type_id::f16;
  static constexpr std::string_view name = "f16";
  /// 65520: the midpoint above 65504 rounds (to even) to Inf.
  static constexpr std::uint32_t overflow_abs_bits = 0x477ff000u;
  /// 65504, as fp32 bits.
  static constexpr std::uint32_t max_finite_bits = 0x477fe000u;
};
template <>
struct value_traits<bfloat16> {
  static constexpr value_type_id id = value_type_id::bf16;
  static constexpr std::string_view name = "bf16";
  /// The midpoint above the largest finite bf16 rounds (to even) to Inf.
  static constexpr std::uint32_t overflow_abs_bits = 0x7f7f8000u;
  /// The largest finite bf16, as fp32 bits.
  static constexpr std::uint32_t max_finite_bits = 0x7f7f0000u;
};

template <class T>
concept gradient_value =
    std::is_same_v<T, float> || std::is_same_v<T, half> || std::is_same_v<T, bfloat16>;

/// float -> T with round to nearest even (the identity for float).
template <gradient_value T>
GRADCOMP_HOST_DEVICE constexpr T from_float(float f) noexcept {
  if constexpr (std::is_same_v<T, float>) {
    return f;
  } else if constexpr (std::is_same_v<T, half>) {
    return to_half(f);
  } else {
    return to_bfloat16(f);
  }
}

[[nodiscard]] constexpr std::size_t value_size(value_type_id id) noexcept {
  return id == value_type_id::f32 ? 4 : 2;
}

} // namespace gradcomp
