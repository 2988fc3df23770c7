// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../detail/dispatch.hpp"
#include "../encoding/code_encodings.hpp"
#include "../math/canonical_sum.hpp"
#include "../math/ternary.hpp"
#include "common.hpp"
#include "identity.hpp"
#include "level_rule.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string_view>
#include <vector>

namespace gradcomp {

namespace detail {
struct ternary_coder {
  static constexpr bool uses_random = true;
  static constexpr unsigned fixed_bits = 2;
  [[nodiscard]] unsigned bits() const noexcept { return fixed_bits; }
  [[nodiscard]] GRADCOMP_HOST_DEVICE math::threshold_word threshold(float x,
                                                                    float s) const noexcept {
    return math::ternary_threshold(x, s);
  }
  [[nodiscard]] GRADCOMP_HOST_DEVICE std::uint32_t code(float x, float,
                                                        std::uint32_t up) const noexcept {
    return math::ternary_code(x, up);
  }
  [[nodiscard]] GRADCOMP_HOST_DEVICE float decode(std::uint32_t c, float s) const noexcept {
    return math::ternary_decode(c, s);
  }
  [[nodiscard]] GRADCOMP_HOST_DEVICE bool valid(std::uint32_t c) const noexcept { return c != 3u; }
  [[nodiscard]] static constexpr level_rule levels() noexcept { return {level_map::ternary, 1}; }
};
} // namespace detail

/// TernGrad (Wen et al. 2017): Q(x)_i = s sign(x_i) Bernoulli(|x_i| / s), s = max|x| per span.
///
/// Contract
/// - `clip = false` (the paper's code): s = max|x|. `clip = true` (Wen et al., GRACE): s =
///   min(max|x|, clip_sigmas * sigma), sigma the population std of the span; entries above s
///   count as s, so the operator is unbiased w.r.t. the clipped input.
/// - Unbiased. Omega(x) = max|x| |x|_1 / |x|^2 - 1 <= min(n/4, sqrt(n) - 1) (the bound omega()
///   returns). An all-zero span gives zeros and s = 0.
/// - Random bits: 32 per element from the rounding stream at the global index.
/// - Payload: ternary; encoding ternary_2bit (2 bits/element + fp32 scale).
struct terngrad {
  static constexpr compressor_id id = compressor_id::terngrad;
  static constexpr std::string_view name = "terngrad";
  static constexpr bool is_unbiased = true;
  static constexpr bool is_elementwise = false;
  using payload_kind = ternary_payload;

  bool clip = false;
  double clip_sigmas = 2.5;

  void validate() const {
    detail::require(std::isfinite(clip_sigmas) && clip_sigmas > 0.0, errc::invalid_parameter,
                    "terngrad.clip_sigmas must be finite and > 0, got " +
                        std::to_string(clip_sigmas));
  }
  [[nodiscard]] terngrad with_parameter(double c) const {
    terngrad t{true, c};
    t.validate();
    return t;
  }
  [[nodiscard]] std::optional<double> omega(std::size_t n) const {
    const auto d = static_cast<double>(n);
    return n == 0 ? 0.0 : std::min(d / 4.0, std::sqrt(d) - 1.0);
  }
  [[nodiscard]] std::uint64_t parameter_word() const {
    return clip ? detail::double_word(clip_sigmas) : 0;
  }
  [[nodiscard]] std::size_t num_scales(std::size_t n) const { return n > 0 ? 1 : 0; }
  [[nodiscard]] std::size_t scale_group(std::size_t n) const { return n > 0 ? n : 1; }
  [[nodiscard]] bool valid_scale(float s) const { return std::isfinite(s) && s >= 0.0f; }

  template <class Exec, gradient_value T>
  std::uint32_t scan(const Exec& exec, const T* x, std::size_t n, float* scales,
                     std::vector<double>&) const {
    if (n == 0) {
      return 0;
    }
    if (!clip) {
      const std::uint32_t mb = detail::scan_max_abs(exec, x, n);
      scales[0] = detail::bits_float(mb);
      return mb;
    }
    double sum = 0, sum_sq = 0;
    const std::uint32_t mb =
        detail::run<detail::reduce_groups>(exec, x, n, n, math::sum_kind::value, &sum);
    (void)detail::run<detail::reduce_groups>(exec, x, n, n, math::sum_kind::square, &sum_sq);
    const double mean = sum / static_cast<double>(n);
    const double var = std::max(0.0, std::fma(-mean, mean, sum_sq / static_cast<double>(n)));
    const auto bound = static_cast<float>(clip_sigmas * std::sqrt(var));
    scales[0] = std::min(detail::bits_float(mb), bound);
    return mb;
  }
  [[nodiscard]] detail::ternary_coder coder(const ternary_2bit&) const { return {}; }
  friend bool operator==(const terngrad&, const terngrad&) = default;
};

} // namespace gradcomp
