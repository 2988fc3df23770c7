// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../compressor/level_rule.hpp"
#include "bit_pack.hpp"

#include <cstddef>
#include <string>
#include <vector>

/// @file
/// Where the levels of a codec's messages lie (compressor/level_rule.hpp): per span, its elements,
/// where its payload starts in a message, its scales and its codes. Every message of a scheme
/// whose spans are all fixed-width codes has the same span offsets, so they follow from the plan.

namespace gradcomp::detail {

struct level_span {
  std::size_t begin = 0;          ///< first element in the flat buffer
  std::size_t size = 0;           ///< elements
  std::size_t payload_offset = 0; ///< bytes from the message's start to the span's payload
  std::size_t num_scales = 0;     ///< fp32 scales at the payload's start
  std::size_t group = 1;          ///< elements per scale
  code_layout codes;              ///< how the codes follow the scales
  level_rule rule;
};

/// The level spans of a plan, or, in `why_not`, why its messages cannot be summed as levels.
struct level_plan {
  std::vector<level_span> spans;
  std::string why_not;
  [[nodiscard]] bool summable() const noexcept { return why_not.empty(); }
};

} // namespace gradcomp::detail
