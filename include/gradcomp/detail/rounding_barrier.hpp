// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bits.hpp"

#include <cstdint>

/// @file
/// Sums of products written so that no compiler may contract them into a fused multiply-add.
///
/// With FMA hardware (-mfma, -march=native) GCC fuses `a * b + c` even across statements, clang
/// within an expression, unless -ffp-contract=off is given; the fused result is rounded once
/// instead of twice, so a consumer built with other flags would compute other bytes. The
/// gradcomp::gradcomp target passes -ffp-contract=off to its consumers, but a header-only
/// library is also compiled by builds that never see that flag. rounding_barrier returns its
/// argument with the bits OR-ed with a zero the optimizer cannot see (set by an empty asm
/// statement in the constructor, once per loop, not per element): the product is then an
/// integer operation's result, rounded to float, before any addition uses it. The OR vectorizes.
/// Device code needs no barrier: the CUDA target compiles with -fmad=false.

namespace gradcomp::detail {

class rounding_barrier {
public:
  rounding_barrier() noexcept {
#if !defined(__CUDA_ARCH__) && (defined(__GNUC__) || defined(__clang__))
    __asm__("" : "+r"(zero_));
#endif
  }
  /// `v`, already rounded to float, as the input of a later addition.
  [[nodiscard]] GRADCOMP_HOST_DEVICE GRADCOMP_FORCEINLINE float operator()(float v) const noexcept {
    return bits_float(float_bits(v) | zero_);
  }

private:
  std::uint32_t zero_ = 0;
};

} // namespace gradcomp::detail
