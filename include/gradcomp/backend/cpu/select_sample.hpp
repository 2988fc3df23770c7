// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../compressor/selection_rule.hpp"
#include "../../detail/dispatch.hpp"
#include "select_top_keys.hpp"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

/// @file
/// The CPU's select_sample: a sample rule's subset of a span (compressor/selection_rule.hpp) in
/// O(k + n/64). Draws are taken in order and marked in a bitmap of the span until the target
/// count of distinct indices is marked; the bitmap, read word by word (complemented when the rule
/// keeps the unmarked indices), gives the kept indices in ascending order. The set depends only
/// on the draw sequence, so it is the one every backend computes.

namespace gradcomp::detail {

template <>
struct backend_impl<cpu_tag, select_sample> {
  template <class Rule>
  static void run(const cpu_policy&, std::size_t n, std::size_t k, const Rule& rule,
                  std::vector<std::size_t>& out, cpu_select_scratch& scratch) {
    out.clear();
    if (n == 0 || k == 0) {
      return;
    }
    const sample_target target = sample_target_of(n, k);
    std::vector<std::uint64_t>& marked = scratch.marked;
    marked.assign(ceil_div(n, std::size_t{64}), 0);
    mark_draws(n, target.distinct, rule, marked.data());
    out.resize(k);
    std::size_t* o = out.data();
    const std::uint64_t flip = target.complement ? ~std::uint64_t{0} : 0;
    const std::size_t words = marked.size();
    for (std::size_t w = 0; w < words; ++w) {
      std::uint64_t bits = marked[w] ^ flip;
      if (w + 1 == words && n % 64 != 0) {
        bits &= (std::uint64_t{1} << (n % 64)) - 1; // no index past the span
      }
      for (; bits != 0; bits &= bits - 1) {
        *o++ = 64 * w + static_cast<std::size_t>(std::countr_zero(bits));
      }
    }
  }

private:
  /// Marks draws 0, 1, 2, ... until `distinct` indices are marked. A batch never holds more
  /// draws than indices still missing, so the last draw taken is the one that completes the set.
  /// A rule that has not found them in sample_draw_limit(n) draws is broken (uniform draws
  /// fail that with probability below 2^-n): invalid_parameter, never a hang.
  template <class Rule>
  static void mark_draws(std::uint64_t n, std::uint64_t distinct, const Rule& rule,
                         std::uint64_t* marked) {
    constexpr std::size_t batch = 64;
    std::uint64_t draws[batch];
    std::uint64_t found = 0;
    std::uint64_t j = 0;
    while (found < distinct) {
      require(j < sample_draw_limit(n), errc::invalid_parameter, [&] {
        return "sample rule: " + std::to_string(found) + " distinct indices of the " +
               std::to_string(distinct) + " needed in a span of " + std::to_string(n) + " after " +
               std::to_string(j) + " draws";
      });
      const auto len = static_cast<std::size_t>(std::min<std::uint64_t>(batch, distinct - found));
      fill(rule, j, len, n, draws);
      for (std::size_t t = 0; t < len; ++t) {
        std::uint64_t& word = marked[draws[t] >> 6];
        const std::uint64_t bit = std::uint64_t{1} << (draws[t] & 63u);
        found += (word & bit) == 0 ? 1u : 0u;
        word |= bit;
      }
      j += len;
    }
  }
  template <class Rule>
  static void fill(const Rule& rule, std::uint64_t j, std::size_t len, std::uint64_t n,
                   std::uint64_t* out) {
    if constexpr (requires { rule.fill_draws(j, len, n, out); }) {
      rule.fill_draws(j, len, n, out);
    } else {
      for (std::size_t t = 0; t < len; ++t) {
        out[t] = rule.draw(j + t, n);
      }
    }
  }
};

} // namespace gradcomp::detail
