// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../encoding/code_encodings.hpp"
#include "../math/natural.hpp"
#include "common.hpp"
#include "identity.hpp"
#include "mixins.hpp"

#include <optional>
#include <string_view>
#include <vector>

namespace gradcomp {

namespace detail {
struct natural9_coder {
  static constexpr bool uses_random = true;
  static constexpr bool sign_plane = true; // magnitudes, then a sign bitmap
  static constexpr unsigned fixed_bits = 9;
  [[nodiscard]] unsigned bits() const noexcept { return fixed_bits; }
  [[nodiscard]] GRADCOMP_HOST_DEVICE math::threshold_word threshold(float x, float) const noexcept {
    return math::natural_threshold9(x);
  }
  [[nodiscard]] GRADCOMP_HOST_DEVICE std::uint32_t code(float x, float,
                                                        std::uint32_t up) const noexcept {
    return math::natural_code9(x, up);
  }
  [[nodiscard]] GRADCOMP_HOST_DEVICE float decode(std::uint32_t c, float) const noexcept {
    return math::natural_decode9(c);
  }
  [[nodiscard]] GRADCOMP_HOST_DEVICE bool valid(std::uint32_t c) const noexcept {
    return math::natural_valid9(c);
  }
};
struct natural8_coder {
  static constexpr bool uses_random = true;
  static constexpr unsigned fixed_bits = 8;
  [[nodiscard]] unsigned bits() const noexcept { return fixed_bits; }
  [[nodiscard]] GRADCOMP_HOST_DEVICE math::threshold_word threshold(float x, float) const noexcept {
    return math::natural_threshold8(x);
  }
  [[nodiscard]] GRADCOMP_HOST_DEVICE std::uint32_t code(float x, float,
                                                        std::uint32_t up) const noexcept {
    return math::natural_code8(x, up);
  }
  [[nodiscard]] GRADCOMP_HOST_DEVICE float decode(std::uint32_t c, float) const noexcept {
    return math::natural_decode8(c);
  }
  [[nodiscard]] GRADCOMP_HOST_DEVICE bool valid(std::uint32_t c) const noexcept {
    return math::natural_valid8(c);
  }
};
} // namespace detail

/// Natural compression C_nat (Horvath et al. 2019): unbiased stochastic rounding of |x| to a
/// power of two, P(up) = m/2^23 exactly (math/natural.hpp has the subnormal, saturation and 8-bit
/// window rules).
///
/// Contract: unbiased (inside the format's range); Omega = 1/8, attained at |x| = (4/3) 2^a.
/// Elementwise with index-keyed randomness: layer-wise == entire-model bit for bit. Payload:
/// natural; encodings natural_codes<9> (default) and natural_codes<8>. No parameter.
struct natural : detail::without_parameter<natural>, detail::without_scale {
  static constexpr compressor_id id = compressor_id::natural;
  static constexpr std::string_view name = "natural";
  static constexpr bool is_unbiased = true;
  static constexpr bool is_elementwise = true;
  using payload_kind = natural_payload;

  [[nodiscard]] std::optional<double> omega(std::size_t) const { return 0.125; }
  [[nodiscard]] detail::natural9_coder coder(const natural_codes<9>&) const { return {}; }
  [[nodiscard]] detail::natural8_coder coder(const natural_codes<8>&) const { return {}; }
  friend bool operator==(const natural&, const natural&) = default;
};

} // namespace gradcomp
