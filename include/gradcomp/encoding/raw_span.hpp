// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../core/float16.hpp"
#include "../detail/bits.hpp"
#include "../detail/dispatch.hpp"
#include "../error.hpp"
#include "../payload.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

/// @file
/// A raw span (one a granularity leaves uncompressed, e.g. a small bias): its n values as the
/// message's value type (f32, f16 or bf16; wire_header.hpp), little-endian, nothing else.

namespace gradcomp::detail {

struct raw_span {
  template <class T>
  [[nodiscard]] static constexpr std::size_t bytes(std::size_t n) noexcept {
    return n * sizeof(T);
  }

  template <class T>
  static void write(std::byte* dst, const T* x, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      store_le(dst + i * sizeof(T), x[i]);
    }
  }

  /// Value i of a span whose values are of type vt.
  [[nodiscard]] static float load(const std::byte* src, value_type_id vt, std::size_t i) {
    switch (vt) {
    case value_type_id::f32:
      return load_le<float>(src + 4 * i);
    case value_type_id::f16:
      return to_float(half{load_le<std::uint16_t>(src + 2 * i)});
    case value_type_id::bf16:
      return to_float(bfloat16{load_le<std::uint16_t>(src + 2 * i)});
    }
    return 0.0f;
  }

  /// Validates a span of `bytes` bytes holding n values of type vt (every one finite); returns
  /// the largest |value| as fp32 bits. Errors: corrupt_payload prefixed by where().
  template <class Where>
  static std::uint32_t validate(const std::byte* src, std::size_t bytes, value_type_id vt,
                                std::size_t n, const Where& where) {
    const std::size_t vs = value_size(vt);
    require(bytes == n * vs, errc::corrupt_payload, [&] {
      return std::string(where() + "raw span of " + std::to_string(bytes) + " bytes, needs " +
                         std::to_string(n * vs));
    });
    std::uint32_t max_bits = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t bits = abs_bits(load(src, vt, i));
      require(bits < inf_abs_bits, errc::corrupt_payload, [&] {
        return std::string(where() + "raw value " + std::to_string(i) + " is not finite");
      });
      max_bits = std::max(max_bits, bits);
    }
    return max_bits;
  }

  /// Writes a validated span into dst[0, n): assigned or added.
  template <class T>
  static void decode(const std::byte* src, value_type_id vt, std::size_t n, decode_mode mode,
                     T* dst) {
    for (std::size_t i = 0; i < n; ++i) {
      const float v = load(src, vt, i);
      dst[i] = from_float<T>(mode == decode_mode::add ? to_float(dst[i]) + v : v);
    }
  }
};

} // namespace gradcomp::detail
