// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../config.hpp"
#include "../../detail/bits.hpp"
#include "../../detail/dispatch.hpp"
#include "parallel.hpp"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
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
  std::vector<std::vector<std::uint64_t>> part_key; // candidates found by each thread
  std::vector<std::vector<std::size_t>> part_idx;
  std::vector<std::uint64_t> marked; // select_sample: one bit per element of the span
};

/// Filter chunks per part when a call uses several threads (2^15 elements).
inline constexpr std::size_t select_chunk = 1024;
inline constexpr std::size_t select_min_chunks = 32;

/// Appends the part's vectors to `all` in part order (one part: swapped in, no copy).
template <class V>
void concatenate_parts(std::vector<std::vector<V>>& parts, std::size_t count, std::vector<V>& all) {
  if (count == 1) {
    all.swap(parts[0]);
    return;
  }
  all.clear();
  for (std::size_t p = 0; p < count; ++p) {
    all.insert(all.end(), parts[p].begin(), parts[p].end());
  }
}

/// Calls emit(j), in increasing j < len, for every j where hit(j) holds. The hits of sixteen
/// elements are computed as a byte vector first (a vector compare where hit() allows it) and
/// tested as two words, so the mostly empty groups of a selective filter cost no branch per
/// element.
template <class Hit, class Emit>
GRADCOMP_FORCEINLINE void append_where(std::size_t len, Hit&& hit, Emit&& emit) {
  std::size_t g = 0;
  for (; g + 16 <= len; g += 16) {
    alignas(16) std::uint8_t h[16];
    for (std::size_t j = 0; j < 16; ++j) {
      h[j] = hit(g + j) ? 1 : 0;
    }
    std::uint64_t w[2];
    std::memcpy(w, h, sizeof w);
    for (std::size_t half = 0; half < 2; ++half) {
      // one bit per hit byte (bit 8b for byte b, in memory order on little and big endian)
      std::uint64_t bits = std::endian::native == std::endian::little ? w[half] : 0;
      if constexpr (std::endian::native != std::endian::little) {
        for (std::size_t b = 0; b < 8; ++b) {
          bits |= std::uint64_t{h[8 * half + b]} << (8 * b);
        }
      }
      while (bits != 0) {
        emit(g + 8 * half + static_cast<std::size_t>(std::countr_zero(bits)) / 8);
        bits &= bits - 1;
      }
    }
  }
  for (; g < len; ++g) {
    if (hit(g)) {
      emit(g);
    }
  }
}

/// The keys of elements base .. base+len-1, one call per element.
template <class KeyFn, class K>
GRADCOMP_FORCEINLINE void load_keys(const KeyFn& key, std::size_t base, std::size_t len, K* out) {
  for (std::size_t j = 0; j < len; ++j) {
    out[j] = key(base + j);
  }
}

/// Exact top-k over keys: the k elements with the largest key(i), ties broken toward the lower
/// index, written to `out` in ascending index order. Method: estimate a threshold from a fixed
/// strided sample, keep the candidates at or above it in one branch-free filtering pass (lowering
/// the threshold if fewer than k survive), then select exactly among the candidates. The result is
/// exact and independent of the sample; the sample only decides how much work the filter saves.
template <>
struct backend_impl<cpu_tag, select_top_keys> {
  template <class KeyFn>
  static void run(const cpu_policy& exec, std::size_t n, std::size_t k, KeyFn&& key,
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
    // 1. Threshold estimate from a strided sample: its rank-th largest key (selected, not
    //    sorted: layer-wise top-k runs this once per layer). At most 1/8 of the span is sampled.
    const std::size_t m =
        std::min<std::size_t>(n, std::max<std::size_t>(1024, std::min<std::size_t>(16384, n / 8)));
    const std::size_t stride = n / m;
    ws.sample.resize(m);
    for (std::size_t j = 0; j < m; ++j) {
      ws.sample[j] = static_cast<std::uint64_t>(key(j * stride));
    }
    // Aim for ~1.25 k candidates plus slack for sampling noise.
    const double frac = static_cast<double>(k) / static_cast<double>(n);
    std::size_t rank = static_cast<std::size_t>(frac * static_cast<double>(m) * 1.25) + 16;
    for (;;) {
      std::uint64_t threshold = 0;
      if (rank < m - 1) {
        const auto nth = ws.sample.begin() + static_cast<std::ptrdiff_t>(rank);
        std::nth_element(ws.sample.begin(), nth, ws.sample.end(), std::greater<>());
        threshold = *nth;
      }
      filter(exec, n, key, threshold, ws);
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
  static void filter(const cpu_policy& exec, std::size_t n, KeyFn& key, std::uint64_t threshold,
                     cpu_select_scratch& ws) {
    const std::size_t chunks = ceil_div(n, select_chunk);
    const std::size_t parts = part_count(exec, chunks, select_min_chunks);
    ws.part_key.resize(std::max(parts, ws.part_key.size()));
    ws.part_idx.resize(std::max(parts, ws.part_idx.size()));
    parallel_parts(exec, chunks, select_min_chunks,
                   [&](std::size_t c0, std::size_t c1, std::size_t part) {
                     filter_chunks(n, key, threshold, c0, c1, ws.part_key[part], ws.part_idx[part]);
                   });
    concatenate_parts(ws.part_key, parts, ws.cand_key);
    concatenate_parts(ws.part_idx, parts, ws.cand_idx);
  }
  template <class KeyFn>
  static void filter_chunks(std::size_t n, const KeyFn& key, std::uint64_t threshold,
                            std::size_t c0, std::size_t c1, std::vector<std::uint64_t>& cand_key,
                            std::vector<std::size_t>& cand_idx) {
    using key_t = std::invoke_result_t<const KeyFn&, std::size_t>;
    cand_key.clear();
    cand_idx.clear();
    key_t kbuf[select_chunk];
    std::uint64_t hit_key[select_chunk];
    std::size_t hit_idx[select_chunk];
    const auto t = static_cast<key_t>(threshold);
    for (std::size_t base = c0 * select_chunk; base < std::min(n, c1 * select_chunk);
         base += select_chunk) {
      const std::size_t len = std::min(select_chunk, n - base);
      load_keys(key, base, len, kbuf);
      std::size_t hits = 0;
      append_where(
          len, [&](std::size_t j) { return kbuf[j] >= t; },
          [&](std::size_t j) {
            hit_key[hits] = static_cast<std::uint64_t>(kbuf[j]);
            hit_idx[hits++] = base + j;
          });
      cand_key.insert(cand_key.end(), hit_key, hit_key + hits); // one append per chunk
      cand_idx.insert(cand_idx.end(), hit_idx, hit_idx + hits);
    }
  }
};

/// Indices i in [0, n) where pred(i) holds, ascending, by branch-free chunked compaction; threads
/// take contiguous chunk ranges, their indices are concatenated in order.
template <>
struct backend_impl<cpu_tag, select_where> {
  template <class Pred>
  static void run(const cpu_policy& exec, std::size_t n, Pred&& pred,
                  std::vector<std::size_t>& out) {
    const std::size_t chunks = ceil_div(n, select_chunk);
    const std::size_t parts = part_count(exec, chunks, select_min_chunks);
    if (parts == 1) {
      where_chunks(n, pred, 0, chunks, out);
      return;
    }
    std::vector<std::vector<std::size_t>> found(parts);
    parallel_parts(exec, chunks, select_min_chunks,
                   [&](std::size_t c0, std::size_t c1, std::size_t part) {
                     where_chunks(n, pred, c0, c1, found[part]);
                   });
    concatenate_parts(found, parts, out);
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
