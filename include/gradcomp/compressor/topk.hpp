// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../core/float16.hpp"
#include "../detail/bits.hpp"
#include "common.hpp"

#include <optional>
#include <string_view>

namespace gradcomp {

/// Top-k (Aji & Heafield 2017): keeps the k entries of largest magnitude in each span.
///
/// Contract
/// - k = ceil(ratio * n), clamped to [1, n], computed exactly (ratio held in parts per billion);
///   the paper's code keeps floor(n*ratio)+1 and crashes at ratio 1 (documented deviation).
/// - Exactly k entries; ties at the k-th magnitude go to the lower index; +0 and -0 tie.
/// - Deterministic on every backend. Biased; Omega = 0; delta = k/n.
/// - Payload: sparse (indices ascending + values). Parameter: ratio in (0, 1].
struct topk {
  static constexpr compressor_id id = compressor_id::topk;
  static constexpr std::string_view name = "topk";
  static constexpr bool is_unbiased = false;
  static constexpr bool is_elementwise = false;
  using payload_kind = sparse_payload;

  double ratio = 0.01;

  void validate() const { (void)detail::ratio_ppb(ratio, "topk"); }
  [[nodiscard]] topk with_parameter(double r) const {
    topk c{r};
    c.validate();
    return c;
  }
  [[nodiscard]] std::optional<double> omega(std::size_t) const { return 0.0; }
  [[nodiscard]] std::uint64_t parameter_word() const { return detail::ratio_ppb(ratio, "topk"); }
  [[nodiscard]] std::size_t count(std::size_t n) const {
    return detail::count_from_ppb(detail::ratio_ppb(ratio, "topk"), n);
  }
  [[nodiscard]] std::size_t max_selected(std::size_t n) const { return count(n); }

  [[nodiscard]] bool indices_implied() const noexcept { return false; }
  [[nodiscard]] float value_scale(std::size_t, std::size_t) const noexcept { return 1.0f; }
  static constexpr bool needs_span_max = false;

  /// The selection rule: |x| as bits, the larger key the larger magnitude (+0 and -0 tie).
  struct magnitude_rule {
    using key_type = std::uint32_t;
    static constexpr bool key_is_abs_bits = true;
    template <class T>
    [[nodiscard]] GRADCOMP_HOST_DEVICE key_type key(const T* xs, std::uint64_t i) const noexcept {
      return detail::abs_bits(to_float(xs[i]));
    }
  };
  [[nodiscard]] magnitude_rule rule(const span_context&) const noexcept { return {}; }
  friend bool operator==(const topk&, const topk&) = default;
};

} // namespace gradcomp
