// SPDX-License-Identifier: Apache-2.0
// Spec strings for the suites that walk runtime::example_specs().
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace gradcomp::test {

/// An example spec (its granularity section is "/flat/") with granularity `g` instead, e.g.
/// with_granularity("topk:0.01/flat/coo-f32", "bucket:500") is "topk:0.01/bucket:500/coo-f32".
inline std::string with_granularity(const std::string& spec, std::string_view g) {
  const std::size_t at = spec.find("/flat/");
  std::string out = spec.substr(0, at + 1); // append, not operator+: g++ 12 -Wrestrict
  out.append(g).append(spec, at + 5);
  return out;
}

} // namespace gradcomp::test
