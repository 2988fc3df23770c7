// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../core/float16.hpp"
#include "../../detail/bits.hpp"
#include "../../detail/dispatch.hpp"
#include "../../math/canonical_sum.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace gradcomp::detail {

/// CPU canonical reduction: per group of `group` elements, the canonical double sum of
/// f(x) (math/canonical_sum.hpp), and over all n elements the maximum of |x| as bits.
template <>
struct backend_impl<cpu_tag, reduce_groups> {
  template <class T>
  static std::uint32_t run(const cpu_policy&, const T* x, std::size_t n, std::size_t group,
                           math::sum_kind kind, double* group_sums) {
    std::uint32_t max_bits = 0;
    if (kind == math::sum_kind::none) {
      for (std::size_t i = 0; i < n; ++i) {
        max_bits = std::max(max_bits, abs_bits(to_float(x[i])));
      }
      return max_bits;
    }
    const std::size_t groups = ceil_div(n, group);
    for (std::size_t g = 0; g < groups; ++g) {
      const std::size_t begin = g * group;
      const std::size_t m = std::min(group, n - begin);
      group_sums[g] = tree(x + begin, m, 0, ceil_div(m, math::canonical_chunk), kind, max_bits);
    }
    return max_bits;
  }

private:
  template <class T>
  static double chunk(const T* x, std::size_t m, math::sum_kind kind, std::uint32_t& max_bits) {
    double lane[math::canonical_lanes] = {};
    std::uint32_t mb = 0;
    std::size_t i = 0;
    for (; i + math::canonical_lanes <= m; i += math::canonical_lanes) {
      for (std::size_t j = 0; j < math::canonical_lanes; ++j) {
        const float v = to_float(x[i + j]);
        mb = std::max(mb, abs_bits(v));
        lane[j] += math::summand(v, kind);
      }
    }
    for (std::size_t j = 0; i + j < m; ++j) {
      const float v = to_float(x[i + j]);
      mb = std::max(mb, abs_bits(v));
      lane[j] += math::summand(v, kind);
    }
    max_bits = std::max(max_bits, mb);
    return math::combine_lanes(lane);
  }
  template <class T>
  static double tree(const T* x, std::size_t m, std::size_t lo, std::size_t hi, math::sum_kind kind,
                     std::uint32_t& max_bits) {
    if (hi - lo == 0) {
      return 0.0;
    }
    if (hi - lo == 1) {
      const std::size_t b = lo * math::canonical_chunk;
      return chunk(x + b, std::min(math::canonical_chunk, m - b), kind, max_bits);
    }
    const std::size_t mid = lo + (hi - lo) / 2;
    return tree(x, m, lo, mid, kind, max_bits) + tree(x, m, mid, hi, kind, max_bits);
  }
};

} // namespace gradcomp::detail
