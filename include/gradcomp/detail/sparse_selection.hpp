// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../backend/cpu/select_sample.hpp"
#include "../backend/cpu/select_top_keys.hpp"
#include "../compressor/selection_rule.hpp"
#include "../core/float16.hpp"
#include "bits.hpp"
#include "dispatch.hpp"
#include "input_checks.hpp"
#include "scan.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

/// @file
/// A sparsifier's selection on one span, for any backend that implements the select_top_keys,
/// select_sample, select_at_least and select_where primitives: the sparsifier's rule
/// (compressor/selection_rule.hpp) is bound to the span's values and handed to the primitive its
/// kind asks for.

namespace gradcomp {

/// Result of a sparsifier on one span; the indices are in the workspace.
struct sparse_selection {
  float value_scale = 1.0f;     ///< decoded value = stored value * value_scale
  bool indices_implied = false; ///< the receiver regenerates indices (shared seed)
};

/// Scratch of sparse selections, reused across calls.
struct sparse_workspace {
  std::vector<std::size_t> indices; ///< selected span-local indices, ascending
  detail::cpu_select_scratch select;
};

namespace detail {

/// A top-keys rule bound to a span's values: the key function of select_top_keys.
template <class Rule, class T>
struct bound_key {
  Rule rule;
  const T* xs;
  [[nodiscard]] typename Rule::key_type operator()(std::size_t i) const noexcept {
    return rule.key(xs, i);
  }
  /// Hints that the key of element i is wanted soon.
  void prefetch(std::size_t i) const noexcept {
    if (xs != nullptr) {
      GRADCOMP_PREFETCH(xs + i);
    }
  }
};

/// |x| as float bits, the key of a magnitude-threshold rule.
template <class T>
struct magnitude_key {
  const T* xs;
  [[nodiscard]] std::uint32_t operator()(std::size_t i) const noexcept {
    return abs_bits(to_float(xs[i]));
  }
};

/// Selects span-local indices of x[0, n) into ws.indices (ascending) by c's rule; x may be null
/// for a rule that reads no values (regenerating random-k's shared subset). A top-keys or
/// magnitude-threshold selection stores in *max_key, when given, the largest key of the span.
template <class Exec, class C, class T>
sparse_selection select_sparse(const Exec& exec, const C& c, const T* x, std::size_t n,
                               const span_context& ctx, sparse_workspace& ws,
                               std::uint64_t* max_key = nullptr) {
  static_assert(require_sparsifier<C>());
  const auto rule = c.rule(ctx);
  using rule_type = std::remove_cvref_t<decltype(rule)>;
  if constexpr (top_keys_rule<rule_type>) {
    const std::uint64_t top = run<select_top_keys>(
        exec, n, c.count(n), bound_key<rule_type, T>{rule, x}, ws.indices, ws.select);
    if (max_key != nullptr) {
      *max_key = top;
    }
  } else if constexpr (sample_rule<rule_type>) {
    run<select_sample>(exec, n, c.count(n), rule, ws.indices, ws.select);
  } else if constexpr (magnitude_threshold_rule<rule_type>) {
    const std::uint64_t top = run<select_at_least>(
        exec, n, magnitude_key<T>{x}, std::uint64_t{rule.lowest_bits}, ws.indices, ws.select);
    if (max_key != nullptr) {
      *max_key = top;
    }
  } else {
    run<select_where>(
        exec, n, [rule, x](std::size_t i) { return rule.keep(x, i); }, ws.indices, ws.select);
  }
  return {c.value_scale(n, ws.indices.size()), c.indices_implied()};
}

/// The selection of an encode, whose span must be finite (errc::non_finite_input, named by
/// name(), before anything is written). The span's max |x| is scanned first (ctx.max_abs_bits,
/// for rules that need it), except for a magnitude-key or magnitude-threshold rule that does not
/// need it: its filter pass gives the max, and the span is read once.
template <class Exec, class C, class T, class Where>
sparse_selection select_finite(const Exec& exec, const C& c, const T* x, std::size_t n,
                               span_context ctx, sparse_workspace& ws, const Where& name) {
  using rule_type = selection_rule_t<C>;
  if constexpr ((magnitude_key_rule<rule_type> ||
                 magnitude_threshold_rule<rule_type>)&&!C::needs_span_max) {
    std::uint64_t max_key = 0;
    const sparse_selection sel = select_sparse(exec, c, x, n, ctx, ws, &max_key);
    require_finite(static_cast<std::uint32_t>(std::min<std::uint64_t>(max_key, inf_abs_bits)), x, n,
                   ctx.global_begin, name);
    return sel;
  } else {
    ctx.max_abs_bits = scan_max_abs(exec, x, n);
    require_finite(ctx.max_abs_bits, x, n, ctx.global_begin, name);
    return select_sparse(exec, c, x, n, ctx, ws);
  }
}

} // namespace detail
} // namespace gradcomp
