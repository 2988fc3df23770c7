// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../detail/dispatch.hpp"
#include "../encoding/code_encodings.hpp"
#include "../math/canonical_sum.hpp"
#include "../math/qsgd.hpp"
#include "common.hpp"
#include "level_rule.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string_view>
#include <vector>

namespace gradcomp {

namespace detail {
struct qsgd_coder {
  static constexpr bool uses_random = true;
  static constexpr bool sign_plane = true; // magnitudes, then a sign bitmap
  std::uint32_t s = 255;
  unsigned level_bits = 8;
  [[nodiscard]] unsigned bits() const noexcept { return level_bits + 1; }
  [[nodiscard]] GRADCOMP_HOST_DEVICE math::threshold_word threshold(float x,
                                                                    float norm) const noexcept {
    return math::qsgd_threshold(x, norm, s);
  }
  [[nodiscard]] GRADCOMP_HOST_DEVICE std::uint32_t code(float x, float norm,
                                                        std::uint32_t up) const noexcept {
    return math::qsgd_code(x, norm, s, level_bits, up);
  }
  [[nodiscard]] GRADCOMP_HOST_DEVICE float decode(std::uint32_t c, float norm) const noexcept {
    return math::qsgd_decode(c, norm, s, level_bits);
  }
  [[nodiscard]] GRADCOMP_HOST_DEVICE bool valid(std::uint32_t c) const noexcept {
    return math::qsgd_valid(c, s, level_bits);
  }
  [[nodiscard]] level_rule levels() const noexcept {
    return {level_map::sign_magnitude, s, static_cast<double>(s)};
  }
};
} // namespace detail

/// QSGD (Alistarh et al. 2017) with s levels: Q(x)_i = |x| sign(x_i) xi_i, xi_i in {l/s, (l+1)/s}
/// by stochastic rounding of s|x_i|/|x|.
///
/// Contract
/// - `levels` = s >= 1 non-zero levels (paper: 256; its code: 255; GRACE: 127). Prefer 2^b - 1.
/// - `bucket_size` = 0: one l2 norm per span; otherwise one norm per bucket of that many elements
///   (GRACE dist uses 128), and Omega uses the bucket size.
/// - Norms: sqrt of the canonical double sum of squares (no overflow or underflow), rounded to
///   fp32; a norm beyond fp32's range is rejected (errc::value_out_of_range). A zero norm gives
///   exact zeros (the paper's code gives NaN).
/// - Unbiased. Omega = min(d/s^2, sqrt(d)/s), d = bucket or span size.
/// - Payload: levels; encoding qsgd_levels (1 + ceil(log2(s+1)) bits/element + fp32 norms).
struct qsgd {
  static constexpr compressor_id id = compressor_id::qsgd;
  static constexpr std::string_view name = "qsgd";
  static constexpr bool is_unbiased = true;
  static constexpr bool is_elementwise = false;
  using payload_kind = levels_payload;

  std::uint32_t levels = 255;
  std::size_t bucket_size = 0;

  void validate() const {
    detail::require(levels >= 1 && levels < (1u << 30), errc::invalid_parameter,
                    "qsgd.levels must be in [1, 2^30), got " + std::to_string(levels));
    detail::require(bucket_size <= 0xffffffffu, errc::invalid_parameter,
                    "qsgd.bucket_size must be < 2^32");
  }
  [[nodiscard]] qsgd with_parameter(double s) const {
    detail::require(s >= 1.0 && s < 1073741824.0 && s == std::floor(s), errc::invalid_parameter,
                    "qsgd levels override must be an integer in [1, 2^30), got " +
                        std::to_string(s));
    qsgd q{static_cast<std::uint32_t>(s), bucket_size};
    q.validate();
    return q;
  }
  [[nodiscard]] std::optional<double> omega(std::size_t n) const {
    const auto d = static_cast<double>(bucket_size == 0 ? n : std::min(n, bucket_size));
    const auto s = static_cast<double>(levels);
    return std::min(d / (s * s), std::sqrt(d) / s);
  }
  [[nodiscard]] std::uint64_t parameter_word() const {
    return levels | (static_cast<std::uint64_t>(bucket_size) << 32);
  }
  [[nodiscard]] std::size_t scale_group(std::size_t n) const {
    return bucket_size == 0 ? (n > 0 ? n : 1) : bucket_size;
  }
  [[nodiscard]] std::size_t num_scales(std::size_t n) const {
    return detail::ceil_div(n, scale_group(n));
  }
  [[nodiscard]] bool valid_scale(float s) const { return std::isfinite(s) && s >= 0.0f; }

  template <class Exec, gradient_value T>
  std::uint32_t scan(const Exec& exec, const T* x, std::size_t n, float* norms,
                     std::vector<double>& sums_) const {
    const std::size_t groups = num_scales(n);
    sums_.resize(groups);
    const std::uint32_t mb = detail::run<detail::reduce_groups>(
        exec, x, n, scale_group(n), math::sum_kind::square, sums_.data());
    if (mb >= detail::inf_abs_bits) {
      return mb; // the caller reports the non-finite input
    }
    for (std::size_t g = 0; g < groups; ++g) {
      norms[g] = static_cast<float>(std::sqrt(sums_[g]));
      detail::require(std::isfinite(norms[g]), errc::value_out_of_range,
                      "qsgd: the l2 norm of bucket " + std::to_string(g) +
                          " exceeds the fp32 range");
    }
    return mb;
  }
  [[nodiscard]] detail::qsgd_coder coder(const qsgd_levels&) const {
    return {levels, math::qsgd_level_bits(levels)};
  }
  friend bool operator==(const qsgd&, const qsgd&) = default;
};

} // namespace gradcomp
