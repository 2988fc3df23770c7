// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../core/float16.hpp"
#include "../detail/scan.hpp"
#include "../error.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

/// @file
/// Members that several compressors share, as empty bases: compressors without a runtime
/// parameter, and elementwise quantizers that need no scale (only the finiteness scan).

namespace gradcomp::detail {

template <class Derived>
struct without_parameter {
  void validate() const {}
  [[nodiscard]] Derived with_parameter(double) const {
    fail(errc::invalid_parameter, std::string(Derived::name) + " has no parameter to override");
  }
  [[nodiscard]] std::uint64_t parameter_word() const { return 0; }
  friend constexpr bool operator==(const without_parameter&, const without_parameter&) = default;
};

struct without_scale {
  [[nodiscard]] std::size_t num_scales(std::size_t) const { return 0; }
  [[nodiscard]] std::size_t scale_group(std::size_t n) const { return n > 0 ? n : 1; }
  [[nodiscard]] bool valid_scale(float) const { return true; }
  template <class Exec, gradient_value T>
  std::uint32_t scan(const Exec& exec, const T* x, std::size_t n, float*,
                     std::vector<double>&) const {
    return scan_max_abs(exec, x, n);
  }
  friend constexpr bool operator==(const without_scale&, const without_scale&) = default;
};

} // namespace gradcomp::detail
