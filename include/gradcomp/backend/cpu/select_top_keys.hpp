// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../config.hpp"
#include "../../detail/bits.hpp"
#include "../../detail/dispatch.hpp"
#include "compress_where.hpp"
#include "parallel.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace gradcomp::detail {

/// Reusable buffers of the CPU selection primitives (kept by the codec between calls).
struct cpu_select_scratch {
  std::vector<std::uint64_t> sample;
  std::vector<std::uint64_t> cand_key;
  std::vector<std::size_t> cand_idx;
  std::vector<std::uint64_t> kth;
  std::vector<std::vector<std::uint64_t>> part_key; // candidates found by each thread
  std::vector<std::vector<std::size_t>> part_idx;
  std::vector<std::uint64_t> part_top; // the largest key each thread's part saw
  std::vector<std::uint64_t> marked;   // select_sample: one bit per element of the span
};

/// Filter chunks per part when a call uses several threads (2^15 elements).
inline constexpr std::size_t select_chunk = 1024;
inline constexpr std::size_t select_min_chunks = 32;

/// Copies the first `count` part vectors into `all`, in part order. (Copied, not swapped: a swap
/// would rotate the buffers, and each would only reach its size after several calls.)
template <class V>
void concatenate_parts(const std::vector<std::vector<V>>& parts, std::size_t count,
                       std::vector<V>& all) {
  std::size_t total = 0;
  for (std::size_t p = 0; p < count; ++p) {
    total += parts[p].size();
  }
  all.resize(total);
  auto at = all.begin();
  for (std::size_t p = 0; p < count; ++p) {
    at = std::copy(parts[p].begin(), parts[p].end(), at);
  }
}

/// The k-th largest (1 <= k <= keys.size()) of keys, by most-significant-digit radix selection:
/// a histogram of the 11 bits below those all remaining keys share, then only the keys of the
/// digit holding the k-th go on (into scratch). Each pass reads the remaining keys twice; the
/// candidates of a top-k filter take two or three passes.
inline std::uint64_t kth_largest_key(const std::vector<std::uint64_t>& keys, std::size_t k,
                                     std::vector<std::uint64_t>& scratch) {
  constexpr unsigned digit_bits = 11;
  constexpr std::size_t digits = std::size_t{1} << digit_bits;
  std::uint64_t lo = ~std::uint64_t{0};
  std::uint64_t hi = 0;
  for (const std::uint64_t key : keys) { // a vectorized pass (std::minmax_element is not)
    lo = std::min(lo, key);
    hi = std::max(hi, key);
  }
  const std::uint64_t* cur = keys.data();
  std::size_t size = keys.size();
  std::array<std::size_t, digits> hist; // 16 KB on the stack: no allocation per call
  for (;;) {
    const auto width = static_cast<unsigned>(std::bit_width(lo ^ hi));
    if (width == 0) {
      return hi; // every remaining key is equal
    }
    const unsigned shift = width > digit_bits ? width - digit_bits : 0;
    hist.fill(0);
    for (std::size_t j = 0; j < size; ++j) {
      ++hist[(cur[j] >> shift) & (digits - 1)];
    }
    std::size_t d = digits - 1;
    while (hist[d] < k) { // the digits above the k-th key's
      k -= hist[d];
      --d;
    }
    if (shift == 0) { // the bits above the digit are shared
      return (hi & ~std::uint64_t{digits - 1}) | d;
    }
    scratch.resize(std::max(scratch.size(), hist[d]));
    std::size_t kept = 0;
    lo = ~std::uint64_t{0};
    hi = 0;
    for (std::size_t j = 0; j < size; ++j) { // in place once cur is scratch: kept <= j
      const std::uint64_t key = cur[j];
      if (((key >> shift) & (digits - 1)) == d) {
        scratch[kept++] = key;
        lo = std::min(lo, key);
        hi = std::max(hi, key);
      }
    }
    cur = scratch.data();
    size = kept;
  }
}

/// The candidates of chunks [c0, c1) of the span (select_chunk keys each) into cand_idx and,
/// With_keys, their keys into cand_key; returns the chunks' largest key.
template <bool With_keys, class KeyFn>
std::uint64_t filter_chunks(std::size_t n, const KeyFn& key, std::uint64_t threshold,
                            std::size_t c0, std::size_t c1, std::vector<std::uint64_t>& cand_key,
                            std::vector<std::size_t>& cand_idx) {
  using key_t = std::invoke_result_t<const KeyFn&, std::size_t>;
  cand_key.clear();
  cand_idx.clear();
  key_t hit_key[select_chunk];
  std::uint32_t hit_pos[select_chunk];
  const auto t = static_cast<key_t>(threshold);
  key_t top = 0;
  for (std::size_t base = c0 * select_chunk; base < std::min(n, c1 * select_chunk);
       base += select_chunk) {
    const std::size_t len = std::min(select_chunk, n - base);
    const std::size_t hits = keys_at_least(key, base, len, t, hit_key, hit_pos, top);
    const std::size_t old = cand_idx.size();
    cand_idx.resize(old + hits); // one append per chunk
    for (std::size_t h = 0; h < hits; ++h) {
      cand_idx[old + h] = base + hit_pos[h];
    }
    if constexpr (With_keys) {
      cand_key.resize(old + hits);
      for (std::size_t h = 0; h < hits; ++h) {
        cand_key[old + h] = static_cast<std::uint64_t>(hit_key[h]);
      }
    }
  }
  return static_cast<std::uint64_t>(top);
}

/// The candidates of a span, key(i) >= threshold, in index order into `idx` and, With_keys, their
/// keys into ws.cand_key; returns the span's largest key. One part filters straight into them;
/// several filter contiguous chunk ranges into the workspace's part vectors, then concatenated.
template <bool With_keys, class KeyFn>
std::uint64_t filter_candidates(const cpu_policy& exec, std::size_t n, const KeyFn& key,
                                std::uint64_t threshold, cpu_select_scratch& ws,
                                std::vector<std::size_t>& idx) {
  const std::size_t chunks = ceil_div(n, select_chunk);
  const std::size_t parts = part_count(exec, chunks, select_min_chunks);
  if (parts == 1) {
    return filter_chunks<With_keys>(n, key, threshold, 0, chunks, ws.cand_key, idx);
  }
  ws.part_key.resize(std::max(parts, ws.part_key.size()));
  ws.part_idx.resize(std::max(parts, ws.part_idx.size()));
  ws.part_top.assign(parts, 0);
  parallel_parts(exec, chunks, select_min_chunks,
                 [&](std::size_t c0, std::size_t c1, std::size_t part) {
                   ws.part_top[part] = filter_chunks<With_keys>(
                       n, key, threshold, c0, c1, ws.part_key[part], ws.part_idx[part]);
                 });
  if constexpr (With_keys) {
    concatenate_parts(ws.part_key, parts, ws.cand_key);
  }
  concatenate_parts(ws.part_idx, parts, idx);
  return *std::max_element(ws.part_top.begin(), ws.part_top.end());
}

/// Exact top-k over keys: the k elements with the largest key(i), ties broken toward the lower
/// index, written to `out` in ascending index order; returns the largest key of the span (the
/// filter's by-product: a rule whose keys are |x| bits gets the finiteness scan for free).
/// Method: estimate a threshold from a fixed sample of the keys, keep the candidates at or above it
/// in one filtering pass (lowering the threshold if fewer than k survive), then select exactly
/// among the candidates. The result is exact and independent of the sample; the sample only decides
/// how much work the filter saves.
template <>
struct backend_impl<cpu_tag, select_top_keys> {
  template <class KeyFn>
  static std::uint64_t run(const cpu_policy& exec, std::size_t n, std::size_t k, KeyFn&& key,
                           std::vector<std::size_t>& out, cpu_select_scratch& ws) {
    out.clear();
    if (n == 0) {
      return 0;
    }
    if (k >= n || k == 0) { // everything or nothing: no filter, one pass for the largest key
      std::uint64_t top = 0;
      for (std::size_t i = 0; i < n; ++i) {
        top = std::max<std::uint64_t>(top, static_cast<std::uint64_t>(key(i)));
      }
      if (k != 0) {
        out.resize(n);
        for (std::size_t i = 0; i < n; ++i) {
          out[i] = i;
        }
      }
      return top;
    }
    // 1. Threshold estimate from a sample: its rank-th largest key.
    const std::size_t m = sample_keys(n, key, ws.sample);
    // Aim for ~1.25 k candidates plus slack for sampling noise.
    const double frac = static_cast<double>(k) / static_cast<double>(n);
    std::size_t rank = static_cast<std::size_t>(frac * static_cast<double>(m) * 1.25) + 16;
    std::uint64_t top = 0;
    for (;;) {
      std::uint64_t threshold = 0;
      if (rank < m - 1) {
        threshold = kth_largest_key(ws.sample, rank + 1, ws.kth);
      }
      top = filter_candidates<true>(exec, n, key, threshold, ws, ws.cand_idx);
      if (ws.cand_idx.size() >= k) {
        break;
      }
      rank = rank >= m - 1 ? m - 1 : std::min(m - 1, rank * 4 + 64);
    }
    // 2. Exact k-th largest key among the candidates.
    const std::uint64_t kth = kth_largest_key(ws.cand_key, k, ws.kth);
    std::size_t greater = 0;
    for (std::uint64_t c : ws.cand_key) {
      greater += c > kth ? 1 : 0;
    }
    // 3. Emit in index order: everything above the k-th key, then ties by lower index. No
    //    branch on the keys (at 10 % about one candidate in five is dropped, unpredictably):
    //    every candidate is written, the count advances when it is kept, and the slot past the
    //    k-th takes the writes after the last kept one.
    std::size_t ties = k - greater;
    out.resize(k + 1);
    std::size_t w = 0;
    for (std::size_t c = 0; c < ws.cand_idx.size(); ++c) {
      const std::uint64_t kc = ws.cand_key[c];
      const bool tie = kc == kth && ties > 0;
      ties -= tie ? 1 : 0;
      out[w] = ws.cand_idx[c];
      w += (kc > kth || tie) ? 1 : 0;
    }
    out.resize(k);
    return top;
  }

private:
  /// Fills `sample` with keys of the span and returns how many: every key of a span of at most
  /// 1024, else 1024 to 16384 keys (at most 1/8 of the span) in runs of sixteen consecutive keys
  /// at evenly spaced places: one or two cache misses per run, prefetched a few runs ahead where
  /// the key function offers prefetch(i) (layer-wise top-k samples every layer).
  template <class KeyFn>
  static std::size_t sample_keys(std::size_t n, const KeyFn& key,
                                 std::vector<std::uint64_t>& sample) {
    if (n <= 1024) {
      sample.resize(n);
      for (std::size_t i = 0; i < n; ++i) {
        sample[i] = static_cast<std::uint64_t>(key(i));
      }
      return n;
    }
    constexpr std::size_t run = 16;
    constexpr std::size_t ahead = 8;
    const std::size_t runs = std::max<std::size_t>(1024, std::min<std::size_t>(16384, n / 8)) / run;
    const std::size_t stride = n / runs; // >= 16: runs do not overlap
    sample.resize(runs * run);
    for (std::size_t r = 0; r < runs; ++r) {
      if constexpr (requires { key.prefetch(r); }) {
        key.prefetch(std::min(r + ahead, runs - 1) * stride);
      }
      for (std::size_t q = 0; q < run; ++q) {
        sample[r * run + q] = static_cast<std::uint64_t>(key(r * stride + q));
      }
    }
    return runs * run;
  }
};

/// Indices i in [0, n) where key(i) >= threshold, ascending; returns the largest key of the span
/// (as select_top_keys: a rule keeping |x| bits at or above a threshold gets the finiteness scan
/// from the same pass).
template <>
struct backend_impl<cpu_tag, select_at_least> {
  template <class KeyFn>
  static std::uint64_t run(const cpu_policy& exec, std::size_t n, KeyFn&& key,
                           std::uint64_t threshold, std::vector<std::size_t>& out,
                           cpu_select_scratch& ws) {
    return filter_candidates<false>(exec, n, key, threshold, ws, out); // no keys
  }
};

/// Indices i in [0, n) where pred(i) holds, ascending, by branch-free chunked compaction; threads
/// take contiguous chunk ranges, their indices are concatenated in order.
template <>
struct backend_impl<cpu_tag, select_where> {
  template <class Pred>
  static void run(const cpu_policy& exec, std::size_t n, Pred&& pred, std::vector<std::size_t>& out,
                  cpu_select_scratch& ws) {
    const std::size_t chunks = ceil_div(n, select_chunk);
    const std::size_t parts = part_count(exec, chunks, select_min_chunks);
    if (parts == 1) {
      where_chunks(n, pred, 0, chunks, out);
      return;
    }
    ws.part_idx.resize(std::max(parts, ws.part_idx.size()));
    parallel_parts(exec, chunks, select_min_chunks,
                   [&](std::size_t c0, std::size_t c1, std::size_t part) {
                     where_chunks(n, pred, c0, c1, ws.part_idx[part]);
                   });
    concatenate_parts(ws.part_idx, parts, out);
  }

private:
  template <class Pred>
  static void where_chunks(std::size_t n, const Pred& pred, std::size_t c0, std::size_t c1,
                           std::vector<std::size_t>& out) {
    out.clear();
    std::size_t hit_idx[select_chunk];
    for (std::size_t base = c0 * select_chunk; base < std::min(n, c1 * select_chunk);
         base += select_chunk) {
      std::size_t hits = 0;
      append_where(
          std::min(select_chunk, n - base), [&](std::size_t j) { return pred(base + j); },
          [&](std::size_t j) { hit_idx[hits++] = base + j; });
      out.insert(out.end(), hit_idx, hit_idx + hits); // one append per chunk
    }
  }
};

} // namespace gradcomp::detail
