// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../core/float16.hpp"
#include "../../detail/bits.hpp"
#include "../../detail/dispatch.hpp"
#include "../../math/canonical_sum.hpp"
#include "parallel.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace gradcomp::detail {

/// CPU canonical reduction: per group of `group` elements, the canonical double sum of
/// f(x) (math/canonical_sum.hpp), and over all n elements the maximum of |x| as bits.
template <>
struct backend_impl<cpu_tag, reduce_groups> {
  template <class T>
  static std::uint32_t run(const cpu_policy& exec, const T* x, std::size_t n, std::size_t group,
                           math::sum_kind kind, double* group_sums) {
    switch (kind) {
    case math::sum_kind::none:
      return max_abs(exec, x, n);
    case math::sum_kind::value:
      return groups<math::sum_kind::value>(exec, x, n, group, group_sums);
    case math::sum_kind::square:
      return groups<math::sum_kind::square>(exec, x, n, group, group_sums);
    case math::sum_kind::absolute:
      return groups<math::sum_kind::absolute>(exec, x, n, group, group_sums);
    }
    return 0;
  }

private:
  static constexpr auto max_of = [](std::uint32_t a, std::uint32_t b) { return std::max(a, b); };
  /// Elements per part when a call uses several threads.
  static constexpr std::size_t parallel_min_elements = std::size_t{1} << 15;

  template <class T>
  static std::uint32_t max_abs(const cpu_policy& exec, const T* x, std::size_t n) {
    return parallel_reduce(
        exec, n, parallel_min_elements, std::uint32_t{0},
        [&](std::size_t begin, std::size_t end) { return max_abs(x + begin, end - begin); },
        max_of);
  }
  template <class T>
  static std::uint32_t max_abs(const T* x, std::size_t n) noexcept {
    std::uint32_t m[8] = {};
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      for (std::size_t j = 0; j < 8; ++j) {
        m[j] = std::max(m[j], abs_bits(to_float(x[i + j])));
      }
    }
    for (std::size_t j = 0; i + j < n; ++j) {
      m[j] = std::max(m[j], abs_bits(to_float(x[i + j])));
    }
    return *std::max_element(m, m + 8);
  }
  /// Many groups: threads take contiguous group ranges. Few large groups (one scale per span):
  /// the chunk sums of each group are computed by all threads, then combined by the same
  /// balanced tree as the single-threaded recursion, so the sums are identical.
  template <math::sum_kind Kind, class T>
  static std::uint32_t groups(const cpu_policy& exec, const T* x, std::size_t n, std::size_t group,
                              double* group_sums) {
    if (n == 0) {
      return 0;
    }
    const std::size_t count = ceil_div(n, group);
    const std::size_t min_groups = ceil_div(parallel_min_elements, group);
    if (part_count(exec, count, min_groups) > 1 ||
        part_count(exec, n, parallel_min_elements) == 1) {
      return parallel_reduce(
          exec, count, min_groups, std::uint32_t{0},
          [&](std::size_t g0, std::size_t g1) {
            return serial_groups<Kind>(x, n, group, g0, g1, group_sums);
          },
          max_of);
    }
    std::uint32_t max_bits = 0;
    std::vector<double> chunk_sums;
    for (std::size_t g = 0; g < count; ++g) {
      const std::size_t begin = g * group;
      const std::size_t m = std::min(group, n - begin);
      const std::size_t chunks = ceil_div(m, math::canonical_chunk);
      chunk_sums.assign(chunks, 0.0);
      const std::size_t min_chunks = parallel_min_elements / math::canonical_chunk;
      const std::uint32_t chunk_max = parallel_reduce(
          exec, chunks, min_chunks, std::uint32_t{0},
          [&](std::size_t c0, std::size_t c1) {
            std::uint32_t mb = 0;
            for (std::size_t c = c0; c < c1; ++c) {
              const std::size_t b = c * math::canonical_chunk;
              chunk_sums[c] =
                  chunk<Kind>(x + begin + b, std::min(math::canonical_chunk, m - b), mb);
            }
            return mb;
          },
          max_of);
      max_bits = std::max(max_bits, chunk_max);
      group_sums[g] = tree_of(chunk_sums.data(), 0, chunks);
    }
    return max_bits;
  }
  template <math::sum_kind Kind, class T>
  static std::uint32_t serial_groups(const T* x, std::size_t n, std::size_t group, std::size_t g0,
                                     std::size_t g1, double* group_sums) {
    std::uint32_t max_bits = 0;
    for (std::size_t g = g0; g < g1; ++g) {
      const std::size_t begin = g * group;
      const std::size_t m = std::min(group, n - begin);
      group_sums[g] = tree<Kind>(x + begin, m, 0, ceil_div(m, math::canonical_chunk), max_bits);
    }
    return max_bits;
  }
  /// The balanced tree of tree<Kind>() over precomputed chunk sums.
  static double tree_of(const double* sums, std::size_t lo, std::size_t hi) noexcept {
    if (hi - lo == 0) {
      return 0.0;
    }
    if (hi - lo == 1) {
      return sums[lo];
    }
    const std::size_t mid = lo + (hi - lo) / 2;
    return tree_of(sums, lo, mid) + tree_of(sums, mid, hi);
  }
  template <math::sum_kind Kind, class T>
  static double chunk(const T* x, std::size_t m, std::uint32_t& max_bits) {
    double lane[math::canonical_lanes] = {};
    std::uint32_t mb = 0;
    std::size_t i = whole_rows<Kind>(x, m, lane, mb);
    for (; i + math::canonical_lanes <= m; i += math::canonical_lanes) {
      for (std::size_t j = 0; j < math::canonical_lanes; ++j) {
        const float v = to_float(x[i + j]);
        mb = std::max(mb, abs_bits(v));
        lane[j] += math::summand(v, Kind);
      }
    }
    for (std::size_t j = 0; i + j < m; ++j) {
      const float v = to_float(x[i + j]);
      mb = std::max(mb, abs_bits(v));
      lane[j] += math::summand(v, Kind);
    }
    max_bits = std::max(max_bits, mb);
    return math::combine_lanes(lane);
  }
  /// The rows of 32 elements of a chunk with four 8-wide double accumulators held in registers
  /// (the lanes' adds are independent, so they are not latency-bound); returns the elements
  /// consumed. Without GCC/Clang vector extensions, none (the scalar loop does them all).
  template <math::sum_kind Kind, class T>
  static std::size_t whole_rows(const T* x, std::size_t m, double* lane, std::uint32_t& mb) {
#if defined(__GNUC__)
    static_assert(math::canonical_lanes == 32);
    using f64x8 = double __attribute__((vector_size(64)));
    using f32x8 = float __attribute__((vector_size(32)));
    using u32x8 = std::uint32_t __attribute__((vector_size(32)));
    f64x8 acc[4] = {};
    u32x8 top = {};
    std::size_t i = 0;
    for (; i + 32 <= m; i += 32) {
      for (std::size_t k = 0; k < 4; ++k) {
        float row[8];
        for (std::size_t e = 0; e < 8; ++e) {
          row[e] = to_float(x[i + 8 * k + e]);
        }
        u32x8 bits;
        std::memcpy(&bits, row, sizeof bits);
        bits &= 0x7fffffffu;
        const auto greater = reinterpret_cast<u32x8>(bits > top);
        top = (bits & greater) | (top & ~greater);
        f32x8 v;
        std::memcpy(&v, row, sizeof v);
        if constexpr (Kind == math::sum_kind::absolute) {
          std::memcpy(&v, &bits, sizeof v);
        }
        const f64x8 d = __builtin_convertvector(v, f64x8);
        acc[k] += Kind == math::sum_kind::square ? d * d : d;
      }
    }
    for (std::size_t k = 0; k < 4; ++k) {
      for (std::size_t e = 0; e < 8; ++e) {
        lane[8 * k + e] = acc[k][e];
        mb = std::max(mb, top[e]);
      }
    }
    return i;
#else
    (void)x, (void)m, (void)lane, (void)mb;
    return 0;
#endif
  }
  template <math::sum_kind Kind, class T>
  static double tree(const T* x, std::size_t m, std::size_t lo, std::size_t hi,
                     std::uint32_t& max_bits) {
    if (hi - lo == 0) {
      return 0.0;
    }
    if (hi - lo == 1) {
      const std::size_t b = lo * math::canonical_chunk;
      return chunk<Kind>(x + b, std::min(math::canonical_chunk, m - b), max_bits);
    }
    const std::size_t mid = lo + (hi - lo) / 2;
    return tree<Kind>(x, m, lo, mid, max_bits) + tree<Kind>(x, m, mid, hi, max_bits);
  }
};

} // namespace gradcomp::detail
