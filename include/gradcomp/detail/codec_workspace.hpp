// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../error.hpp"
#include "prehashed_blocks.hpp"
#include "sparse_selection.hpp"

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

/// @file
/// What a codec keeps of one encode or decode call, span by span, reused between calls (not
/// reallocated once warm: tests/cpu/test_allocations.cpp): the scales and the selected indices of
/// every span, concatenated in span order, with the offsets where each span's part begins. A span
/// coder appends to the span being planned or validated; the codec closes each span with
/// end_span().

namespace gradcomp::detail {

/// The checks of per-span scales the workers share (codec::encode with scales) against the
/// planned layout: `expected` scales, scale_begin(s) the first of span s of `spans` (the last
/// span's run ends at `expected`), valid(s, value) for each; else invalid_parameter naming the
/// scale and name(s). The same checks, and text, on every backend.
template <class Begin, class Valid, class Name>
void require_shared_scales(std::span<const float> shared, std::size_t spans, std::size_t expected,
                           const Begin& scale_begin, const Valid& valid, const Name& name) {
  require(shared.size() == expected, errc::invalid_parameter, [&] {
    return std::to_string(shared.size()) + " shared scales given, the scheme uses " +
           std::to_string(expected);
  });
  for (std::size_t s = 0; s < spans; ++s) {
    const std::size_t end = s + 1 < spans ? scale_begin(s + 1) : expected;
    for (std::size_t i = scale_begin(s); i < end; ++i) {
      require(valid(s, shared[i]), errc::invalid_parameter, [&] {
        return "shared scale " + std::to_string(i) + " of " + name(s) +
               " is negative or not finite";
      });
    }
  }
}

struct codec_workspace {
  std::vector<float> scales;                ///< every span's scales, in span order
  std::vector<std::size_t> scale_offsets;   ///< span s's scales are [offsets[s], offsets[s+1])
  std::vector<std::size_t> indices;         ///< every span's selected span-local indices
  std::vector<std::size_t> index_offsets;   ///< span s's indices are [offsets[s], offsets[s+1])
  std::vector<sparse_selection> selections; ///< sparse spans: value scale, implied indices
  std::vector<float> kept;  ///< sparse spans: kept values as fp32 (encode; composite spans: times
                            ///< the sparsifier's value scale), decoded values (composite decode)
  sparse_workspace sparse;  ///< scratch of one span's selection
  std::vector<double> sums; ///< scratch of the scale reductions
  prehashed_blocks hashed;  ///< the message being written: checksum blocks its writers hashed

  /// Starts a call over `spans` spans.
  void begin(std::size_t spans) {
    scales.clear();
    indices.clear();
    kept.clear();
    scale_offsets.assign(1, 0);
    index_offsets.assign(1, 0);
    selections.assign(spans, sparse_selection{});
  }
  /// Closes the span being planned or validated.
  void end_span() {
    scale_offsets.push_back(scales.size());
    index_offsets.push_back(indices.size());
  }

  /// The span being planned or validated.
  [[nodiscard]] std::size_t open_span() const noexcept { return index_offsets.size() - 1; }
  /// Room for `count` scales of the open span; returns where they go.
  [[nodiscard]] float* add_scales(std::size_t count) {
    scales.resize(scales.size() + count);
    return scales.data() + (scales.size() - count);
  }
  /// Appends the indices the last selection left in `sparse`; returns where they begin.
  std::size_t add_selected() {
    const std::size_t at = indices.size();
    indices.insert(indices.end(), sparse.indices.begin(), sparse.indices.end());
    return at;
  }

  /// Replaces the planned scales by scales the workers share (the same layout), checked by
  /// require_shared_scales (the planned scales stay on error).
  template <class Valid, class Name>
  void take_shared_scales(std::span<const float> shared, const Valid& valid, const Name& name) {
    require_shared_scales(
        shared, scale_offsets.empty() ? 0 : scale_offsets.size() - 1, scales.size(),
        [&](std::size_t s) { return scale_offsets[s]; }, valid, name);
    std::copy(shared.begin(), shared.end(), scales.begin());
  }

  [[nodiscard]] float* span_scales(std::size_t s) noexcept {
    return scales.data() + scale_offsets[s];
  }
  [[nodiscard]] const std::size_t* span_indices(std::size_t s) const noexcept {
    return indices.data() + index_offsets[s];
  }
  [[nodiscard]] std::size_t span_index_count(std::size_t s) const noexcept {
    return index_offsets[s + 1] - index_offsets[s];
  }
};

} // namespace gradcomp::detail
