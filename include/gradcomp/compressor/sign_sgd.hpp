// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../detail/dispatch.hpp"
#include "../encoding/code_encodings.hpp"
#include "../math/canonical_sum.hpp"
#include "common.hpp"
#include "identity.hpp"
#include "level_rule.hpp"
#include "mixins.hpp"

#include <optional>
#include <string_view>
#include <vector>

namespace gradcomp {

namespace detail {
/// Bit 1 = negative. sign(+0) = sign(-0) = +1 (GRACE: x >= 0 -> +1); decodes to +-scale.
struct sign_coder {
  static constexpr bool uses_random = false;
  static constexpr unsigned fixed_bits = 1;
  [[nodiscard]] unsigned bits() const noexcept { return fixed_bits; }
  [[nodiscard]] GRADCOMP_HOST_DEVICE std::uint32_t code(float x, float,
                                                        std::uint32_t) const noexcept {
    return x < 0.0f ? 1u : 0u;
  }
  [[nodiscard]] GRADCOMP_HOST_DEVICE float decode(std::uint32_t c, float s) const noexcept {
    return c != 0 ? -s : s;
  }
  [[nodiscard]] GRADCOMP_HOST_DEVICE bool valid(std::uint32_t) const noexcept { return true; }
  [[nodiscard]] static constexpr level_rule levels() noexcept { return {level_map::sign_bit, 1}; }
};
} // namespace detail

/// signSGD (Bernstein et al. 2018): Q(x)_i = sign(x_i) in {+1, -1}, 1 bit per element.
///
/// Contract: sign(+-0) = +1. Elementwise, deterministic; layer-wise == entire-model. Biased; no
/// finite Omega (Omega(x) = n/|x|^2 - 1 is unbounded as x -> 0), so omega() is nullopt.
/// Payload: sign; encoding sign_bits (1 bit/element, no scale). No parameter.
struct sign_sgd : detail::without_parameter<sign_sgd>, detail::without_scale {
  static constexpr compressor_id id = compressor_id::sign_sgd;
  static constexpr std::string_view name = "sign";
  static constexpr bool is_unbiased = false;
  static constexpr bool is_elementwise = true;
  using payload_kind = sign_payload;

  [[nodiscard]] std::optional<double> omega(std::size_t) const { return std::nullopt; }
  struct unit_coder : detail::sign_coder {
    [[nodiscard]] GRADCOMP_HOST_DEVICE float decode(std::uint32_t c, float) const noexcept {
      return c != 0 ? -1.0f : 1.0f;
    }
    [[nodiscard]] static constexpr level_rule levels() noexcept {
      return {level_map::sign_bit, 1, 1.0, false};
    }
  };
  [[nodiscard]] unit_coder coder(const sign_bits&) const { return {}; }
  friend bool operator==(const sign_sgd&, const sign_sgd&) = default;
};

/// Scaled sign (EF-signSGD, Karimireddy et al. 2019): C(x) = (|x|_1 / n) sign(x).
///
/// Contract: scale = canonical double sum of |x_i| divided by n, rounded to fp32; sign(+-0) = +1.
/// Biased; Omega = 0; delta(x) = |x|_1^2 / (n |x|^2). Payload: sign; encoding sign_bits
/// (1 bit/element + fp32 scale per span). No parameter.
struct scaled_sign : detail::without_parameter<scaled_sign> {
  static constexpr compressor_id id = compressor_id::scaled_sign;
  static constexpr std::string_view name = "scaled_sign";
  static constexpr bool is_unbiased = false;
  static constexpr bool is_elementwise = false;
  using payload_kind = sign_payload;

  [[nodiscard]] std::optional<double> omega(std::size_t) const { return 0.0; }
  [[nodiscard]] std::size_t num_scales(std::size_t n) const { return n > 0 ? 1 : 0; }
  [[nodiscard]] std::size_t scale_group(std::size_t n) const { return n > 0 ? n : 1; }
  [[nodiscard]] bool valid_scale(float s) const { return std::isfinite(s) && s >= 0.0f; }
  template <class Exec, gradient_value T>
  std::uint32_t scan(const Exec& exec, const T* x, std::size_t n, float* scales,
                     std::vector<double>&) const {
    if (n == 0) {
      return 0;
    }
    double l1 = 0;
    const std::uint32_t mb =
        detail::run<detail::reduce_groups>(exec, x, n, n, math::sum_kind::absolute, &l1);
    scales[0] = static_cast<float>(l1 / static_cast<double>(n));
    return mb;
  }
  [[nodiscard]] detail::sign_coder coder(const sign_bits&) const { return {}; }
  friend bool operator==(const scaled_sign&, const scaled_sign&) = default;
};

} // namespace gradcomp
