// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../backend/cpu/select_top_keys.hpp"
#include "../core/float16.hpp"
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

  template <class Exec, gradient_value T>
  sparse_selection select(const Exec& exec, const T* x, std::size_t n, const span_context&,
                          sparse_workspace& ws) const {
    detail::run<detail::select_top_keys>(
        exec, n, count(n), [x](std::size_t i) { return detail::abs_bits(to_float(x[i])); },
        ws.indices, ws.select);
    return {};
  }
  friend bool operator==(const topk&, const topk&) = default;
};

} // namespace gradcomp
