// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../backend/cpu/select_top_keys.hpp"
#include "../core/float16.hpp"
#include "common.hpp"
#include "mixins.hpp"

#include <optional>
#include <string_view>

namespace gradcomp {

/// Adaptive threshold, as the paper ran it: keeps x_i iff |x_i| >= max_j |x_j| / 2 (AdaComp
/// with zero residue and one bin; SPECS.md §1.3.5).
///
/// Contract
/// - The test is 2|x_i| >= max|x| in float, exact (doubling is exact; overflow to Inf compares
///   correctly). Zeros are never kept, so an all-zero span sends nothing. Always keeps the maximum:
///   delta >= 1/n. Deterministic (max is order-independent). Biased; Omega = 0.
/// - Payload: sparse. No parameter (with_parameter rejects overrides).
struct adaptive_threshold : detail::without_parameter<adaptive_threshold> {
  static constexpr compressor_id id = compressor_id::adaptive_threshold;
  static constexpr std::string_view name = "adaptive_threshold";
  static constexpr bool is_unbiased = false;
  static constexpr bool is_elementwise = false;
  using payload_kind = sparse_payload;

  [[nodiscard]] std::optional<double> omega(std::size_t) const { return 0.0; }
  [[nodiscard]] std::size_t max_selected(std::size_t n) const { return n; }

  template <class Exec, gradient_value T>
  sparse_selection select(const Exec& exec, const T* x, std::size_t n, const span_context& ctx,
                          sparse_workspace& ws) const {
    const float max_abs = detail::bits_float(ctx.max_abs_bits);
    detail::run<detail::select_where>(
        exec, n,
        [x, max_abs](std::size_t i) {
          const float a = detail::bits_float(detail::abs_bits(to_float(x[i])));
          return a > 0.0f && 2.0f * a >= max_abs;
        },
        ws.indices);
    return {};
  }
  friend bool operator==(const adaptive_threshold&, const adaptive_threshold&) = default;
};

} // namespace gradcomp
