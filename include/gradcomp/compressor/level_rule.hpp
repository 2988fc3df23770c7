// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>

/// @file
/// How a quantizer's codes add. Its code for an element is an integer level in [-max_level,
/// max_level]; when every worker quantizes on the same grid (one shared scale per span or bucket),
/// the sum of the workers' decoded values is scale * S / unit, S the exact integer sum of their
/// levels (S / unit for codes without a scale). Coders whose codes add export level_rule();
/// framework/level_sums.hpp sums such messages exactly, in any order, and over a real all-reduce.

namespace gradcomp {

/// Where a code's level lies in its bits.
enum class level_map : std::uint8_t {
  ternary,        ///< 0 -> 0, 1 -> +1, 2 -> -1 (TernGrad)
  sign_magnitude, ///< the level in the low bits, its sign in the top bit (QSGD)
  sign_bit,       ///< 0 -> +1, 1 -> -1 (sign, scaled sign)
};

struct level_rule {
  level_map map = level_map::ternary;
  std::uint32_t max_level = 1; ///< largest |level|
  double unit = 1.0;           ///< a level's value is scale * level / unit
  bool scaled = true;          ///< false: the value is level / unit (no scale is sent)
};

} // namespace gradcomp
