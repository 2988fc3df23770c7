// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../detail/dispatch.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <type_traits>
#include <vector>

namespace gradcomp::detail {

/// Reusable buffers of the CPU selection primitives (kept by the codec between calls).
struct cpu_select_scratch {
  std::vector<std::uint64_t> sample;
  std::vector<std::uint64_t> cand_key;
  std::vector<std::size_t> cand_idx;
  std::vector<std::uint64_t> kth;
};

/// Exact top-k over keys: the k elements with the largest key(i), ties broken toward the lower
/// index, written to `out` in ascending index order. Method: estimate a threshold from a fixed
/// strided sample, keep the candidates at or above it in one branch-free filtering pass (lowering
/// the threshold if fewer than k survive), then select exactly among the candidates. The result is
/// exact and independent of the sample; the sample only decides how much work the filter saves.
template <>
struct backend_impl<cpu_tag, select_top_keys> {
  template <class KeyFn>
  static void run(const cpu_policy&, std::size_t n, std::size_t k, KeyFn&& key,
                  std::vector<std::size_t>& out, cpu_select_scratch& ws) {
    out.clear();
    if (k == 0 || n == 0) {
      return;
    }
    if (k >= n) {
      out.resize(n);
      for (std::size_t i = 0; i < n; ++i) {
        out[i] = i;
      }
      return;
    }
    // 1. Threshold estimate from a strided sample, sorted in decreasing key order.
    const std::size_t m = std::min<std::size_t>(n, 16384);
    const std::size_t stride = n / m;
    ws.sample.resize(m);
    for (std::size_t j = 0; j < m; ++j) {
      ws.sample[j] = static_cast<std::uint64_t>(key(j * stride));
    }
    std::sort(ws.sample.begin(), ws.sample.end(), std::greater<>());
    // Aim for ~1.25 k candidates plus slack for sampling noise.
    const double frac = static_cast<double>(k) / static_cast<double>(n);
    std::size_t rank = static_cast<std::size_t>(frac * static_cast<double>(m) * 1.25) + 16;
    for (;;) {
      const std::uint64_t threshold = rank >= m - 1 ? 0 : ws.sample[rank];
      filter(n, key, threshold, ws);
      if (ws.cand_idx.size() >= k) {
        break;
      }
      rank = rank >= m - 1 ? m - 1 : std::min(m - 1, rank * 4 + 64);
    }
    // 2. Exact k-th largest key among the candidates.
    ws.kth.assign(ws.cand_key.begin(), ws.cand_key.end());
    std::nth_element(ws.kth.begin(), ws.kth.begin() + static_cast<std::ptrdiff_t>(k - 1),
                     ws.kth.end(), std::greater<>());
    const std::uint64_t kth = ws.kth[k - 1];
    std::size_t greater = 0;
    for (std::uint64_t c : ws.cand_key) {
      greater += c > kth ? 1 : 0;
    }
    // 3. Emit in index order: everything above the k-th key, then ties by lower index.
    std::size_t ties = k - greater;
    out.reserve(k);
    for (std::size_t c = 0; c < ws.cand_idx.size(); ++c) {
      const std::uint64_t kc = ws.cand_key[c];
      if (kc > kth || (kc == kth && ties > 0)) {
        ties -= kc == kth ? 1 : 0;
        out.push_back(ws.cand_idx[c]);
      }
    }
  }

private:
  template <class KeyFn>
  static void filter(std::size_t n, KeyFn& key, std::uint64_t threshold, cpu_select_scratch& ws) {
    using key_t = std::invoke_result_t<KeyFn&, std::size_t>;
    ws.cand_key.clear();
    ws.cand_idx.clear();
    constexpr std::size_t chunk = 1024;
    key_t kbuf[chunk];
    std::uint32_t ibuf[chunk];
    const auto t = static_cast<key_t>(threshold);
    for (std::size_t base = 0; base < n; base += chunk) {
      const std::size_t len = std::min(chunk, n - base);
      std::size_t c = 0;
      for (std::size_t j = 0; j < len; ++j) { // branch-free compaction
        const key_t kv = key(base + j);
        kbuf[c] = kv;
        ibuf[c] = static_cast<std::uint32_t>(j);
        c += kv >= t ? 1 : 0;
      }
      for (std::size_t j = 0; j < c; ++j) {
        ws.cand_key.push_back(static_cast<std::uint64_t>(kbuf[j]));
        ws.cand_idx.push_back(base + ibuf[j]);
      }
    }
  }
};

/// Indices i in [0, n) where pred(i) holds, ascending, by branch-free chunked compaction.
template <>
struct backend_impl<cpu_tag, select_where> {
  template <class Pred>
  static void run(const cpu_policy&, std::size_t n, Pred&& pred, std::vector<std::size_t>& out) {
    out.clear();
    constexpr std::size_t chunk = 1024;
    std::uint32_t ibuf[chunk];
    for (std::size_t base = 0; base < n; base += chunk) {
      const std::size_t len = std::min(chunk, n - base);
      std::size_t c = 0;
      for (std::size_t j = 0; j < len; ++j) {
        ibuf[c] = static_cast<std::uint32_t>(j);
        c += pred(base + j) ? 1 : 0;
      }
      for (std::size_t j = 0; j < c; ++j) {
        out.push_back(base + ibuf[j]);
      }
    }
  }
};

} // namespace gradcomp::detail
