// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../detail/checksum.hpp"
#include "../error.hpp"
#include "../layout/model_layout.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

/// @file
/// How the sharded exchange (topology::sharded) cuts a model into one shard per rank: rank s is
/// the master of shard s, a contiguous range [begin, begin + size) of the flat gradient.
///
/// The rule. With d elements and n shards, the ideal cut k (k = 1 .. n-1) sits at floor(k d / n).
/// It moves to the nearest tensor boundary when one lies within d / (16n) elements of it, so that
/// shards hold whole tensors wherever that keeps every cut within a sixteenth of a share of its
/// ideal place (a shard then holds between 7/8 and 9/8 of a share: the busiest rank, which sends
/// its shard's broadcast n - 1 times, bounds the step); otherwise the cut
/// stays at floor(k d / n), inside a tensor, whose two pieces are named "name[lo:hi]" (the
/// element range within the tensor) in their shards' layouts. At most n - 1 tensors are cut. A
/// zero-length tensor belongs to the shard its offset falls in (the last shard at offset d).
/// The model needs at least n elements.
///
/// Each shard is compressed as a model of its own: its layout (the tensors or tensor pieces it
/// holds) gives the spans of a layer-wise scheme, and an entire-model (flat) scheme compresses
/// the shard as one vector, so "entire-model" in the sharded exchange means "entire shard".
/// Each shard draws its random bits from its own seed (shard_seed), so that the element at the
/// same local index of two shards does not reuse the same random stream.

namespace gradcomp {

/// One rank's part of the model in the sharded exchange.
struct model_shard {
  std::size_t begin = 0;  ///< offset of the shard in the flat gradient
  std::size_t size = 0;   ///< elements
  model_layout layout;    ///< the tensors (or tensor pieces) it holds, offsets from 0
  std::uint64_t seed = 0; ///< the seed its workers and master use (shard_seed)
};

/// The seed of shard `shard` of a run with seed `seed` (a 64-bit mix of the two).
[[nodiscard]] inline std::uint64_t shard_seed(std::uint64_t seed, std::size_t shard) noexcept {
  return detail::avalanche64(seed ^ (0x9e3779b97f4a7c15ull * (std::uint64_t{shard} + 1)));
}

namespace detail {

/// floor(k d / n) without overflow.
[[nodiscard]] inline std::size_t ideal_cut(std::size_t d, std::size_t n, std::size_t k) noexcept {
  return (d / n) * k + (d % n) * k / n;
}

/// The n + 1 cut points of the rule above.
[[nodiscard]] inline std::vector<std::size_t> shard_cuts(const model_layout& layout,
                                                         std::size_t n) {
  const std::size_t d = layout.total_size();
  std::vector<std::size_t> ends; // tensor boundaries, ascending
  for (const auto& l : layout.layers()) {
    ends.push_back(l.offset + l.size);
  }
  const std::size_t tolerance = d / (16 * n);
  std::vector<std::size_t> cuts{0};
  for (std::size_t k = 1; k < n; ++k) {
    const std::size_t ideal = ideal_cut(d, n, k);
    std::size_t cut = ideal;
    const auto it = std::lower_bound(ends.begin(), ends.end(), ideal);
    std::size_t best = d + tolerance + 1; // distance to the nearest boundary
    if (it != ends.end()) {
      best = *it - ideal;
      cut = *it;
    }
    if (it != ends.begin() && ideal - *(it - 1) < best) {
      best = ideal - *(it - 1);
      cut = *(it - 1);
    }
    if (best > tolerance || cut <= cuts.back() || cut >= d) {
      cut = ideal;
    }
    cuts.push_back(cut);
  }
  cuts.push_back(d);
  return cuts;
}

} // namespace detail

/// The n shards of `layout` (the rule above), shard s with seed shard_seed(seed, s). Errors:
/// invalid_parameter for n = 0 or a model of fewer than n elements.
[[nodiscard]] inline std::vector<model_shard> shard_model(const model_layout& layout, std::size_t n,
                                                          std::uint64_t seed) {
  detail::require(n > 0, errc::invalid_parameter, "a sharded exchange needs at least one rank");
  detail::require(layout.total_size() >= n, errc::invalid_parameter,
                  "a model of " + std::to_string(layout.total_size()) +
                      " elements cannot be cut into " + std::to_string(n) + " shards");
  const std::vector<std::size_t> cuts = detail::shard_cuts(layout, n);
  std::vector<model_shard> shards(n);
  for (std::size_t s = 0; s < n; ++s) {
    const std::size_t a = cuts[s], b = cuts[s + 1];
    std::vector<layer_info> layers;
    for (const auto& l : layout.layers()) {
      const std::size_t lo = std::max(l.offset, a), hi = std::min(l.offset + l.size, b);
      const bool holds_empty = l.size == 0 && (l.offset < b || s + 1 == n) && l.offset >= a;
      if (lo >= hi && !holds_empty) {
        continue;
      }
      const bool whole = l.size == 0 || (lo == l.offset && hi == l.offset + l.size);
      layers.push_back({whole ? l.name
                              : l.name + "[" + std::to_string(lo - l.offset) + ":" +
                                    std::to_string(hi - l.offset) + "]",
                        l.size == 0 ? (l.offset - a) : lo - a, l.size == 0 ? 0 : hi - lo});
    }
    shards[s] = {a, b - a, model_layout::from_layers(std::move(layers)), shard_seed(seed, s)};
  }
  return shards;
}

} // namespace gradcomp
