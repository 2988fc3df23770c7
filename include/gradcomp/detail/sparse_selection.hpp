// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../backend/cpu/select_sample.hpp"
#include "../backend/cpu/select_top_keys.hpp"
#include "../compressor/selection_rule.hpp"
#include "dispatch.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

/// @file
/// A sparsifier's selection on one span, for any backend that implements the select_top_keys,
/// select_sample and select_where primitives: the sparsifier's rule (compressor/selection_rule.hpp)
/// is bound to the span's values and handed to the primitive its kind asks for.

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
};

/// Selects span-local indices of x[0, n) into ws.indices (ascending) by c's rule; x may be null
/// for a rule that reads no values (regenerating random-k's shared subset).
template <class Exec, class C, class T>
sparse_selection select_sparse(const Exec& exec, const C& c, const T* x, std::size_t n,
                               const span_context& ctx, sparse_workspace& ws) {
  static_assert(require_sparsifier<C>());
  const auto rule = c.rule(ctx);
  using rule_type = std::remove_cvref_t<decltype(rule)>;
  if constexpr (top_keys_rule<rule_type>) {
    run<select_top_keys>(exec, n, c.count(n), bound_key<rule_type, T>{rule, x}, ws.indices,
                         ws.select);
  } else if constexpr (sample_rule<rule_type>) {
    run<select_sample>(exec, n, c.count(n), rule, ws.indices, ws.select);
  } else {
    run<select_where>(
        exec, n, [rule, x](std::size_t i) { return rule.keep(x, i); }, ws.indices);
  }
  return {c.value_scale(n, ws.indices.size()), c.indices_implied()};
}

} // namespace detail
} // namespace gradcomp
