// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../config.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

/// @file
/// Bit-level helpers shared by host and device code: casts, float classification by bit
/// inspection (survives -ffinite-math-only) and little-endian loads/stores.

namespace gradcomp::detail {

template <class To, class From>
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr To bit_cast(const From& from) noexcept {
  static_assert(sizeof(To) == sizeof(From), "bit_cast needs equal sizes");
  return __builtin_bit_cast(To, from);
}

GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr std::uint32_t float_bits(float x) noexcept {
  return bit_cast<std::uint32_t>(x);
}
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr float bits_float(std::uint32_t b) noexcept {
  return bit_cast<float>(b);
}
/// |x| as an order-preserving unsigned key: for finite and infinite x, a < b iff |x_a| < |x_b|;
/// NaNs map above +Inf. +0 and -0 share the key 0.
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr std::uint32_t abs_bits(float x) noexcept {
  return float_bits(x) & 0x7fffffffu;
}
inline constexpr std::uint32_t inf_abs_bits = 0x7f800000u;
/// True for NaN and +-Inf, decided on the bits so that finite-math flags cannot remove it.
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr bool is_non_finite(float x) noexcept {
  return abs_bits(x) >= inf_abs_bits;
}

/// The high 64 bits of the 128-bit product a * b, floor(a * b / 2^64), from 32-bit halves.
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr std::uint64_t
mul_high64_halves(std::uint64_t a, std::uint64_t b) noexcept {
  const std::uint64_t a0 = a & 0xffffffffu, a1 = a >> 32, b0 = b & 0xffffffffu, b1 = b >> 32;
  const std::uint64_t mid = (a0 * b0 >> 32) + (a1 * b0 & 0xffffffffu) + a0 * b1;
  return a1 * b1 + (a1 * b0 >> 32) + (mid >> 32);
}
/// floor(a * b / 2^64), the same on every target (a 128-bit product where the host has one).
GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE constexpr std::uint64_t
mul_high64(std::uint64_t a, std::uint64_t b) noexcept {
#if defined(__SIZEOF_INT128__) && !defined(__CUDA_ARCH__)
  __extension__ using u128 = unsigned __int128;
  return static_cast<std::uint64_t>((static_cast<u128>(a) * b) >> 64);
#else
  return mul_high64_halves(a, b);
#endif
}

/// Little-endian stores and loads on unaligned byte pointers (the wire format is LE).
template <class T>
inline void store_le(std::byte* p, T v) noexcept {
  static_assert(std::is_trivially_copyable_v<T>);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  auto u = bit_cast<std::array<std::byte, sizeof(T)>>(v);
  for (std::size_t i = 0; i < sizeof(T); ++i)
    p[i] = u[sizeof(T) - 1 - i];
#else
  std::memcpy(p, &v, sizeof(T));
#endif
}
template <class T>
[[nodiscard]] inline T load_le(const std::byte* p) noexcept {
  static_assert(std::is_trivially_copyable_v<T>);
  T v;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  std::array<std::byte, sizeof(T)> u;
  for (std::size_t i = 0; i < sizeof(T); ++i)
    u[i] = p[sizeof(T) - 1 - i];
  v = bit_cast<T>(u);
#else
  std::memcpy(&v, p, sizeof(T));
#endif
  return v;
}

[[nodiscard]] constexpr std::size_t ceil_div(std::size_t a, std::size_t b) noexcept {
  return a / b + (a % b != 0 ? 1 : 0);
}

} // namespace gradcomp::detail
