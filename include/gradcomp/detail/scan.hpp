// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../math/canonical_sum.hpp"
#include "dispatch.hpp"

#include <cstddef>
#include <cstdint>

namespace gradcomp::detail {

/// Max |x| over a span as float bits (>= inf_abs_bits means a NaN or Inf is present): the
/// finiteness scan of every compressor, on the execution policy's backend.
template <class Exec, class T>
std::uint32_t scan_max_abs(const Exec& exec, const T* x, std::size_t n) {
  return run<reduce_groups>(exec, x, n, std::size_t{1}, math::sum_kind::none, nullptr);
}

} // namespace gradcomp::detail
