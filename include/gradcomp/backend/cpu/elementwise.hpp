// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../detail/dispatch.hpp"
#include "../tags.hpp"

#include <cstddef>
#include <cstring>

/// @file
/// The CPU's elementwise primitives: for_each_element runs a GRADCOMP_HOST_DEVICE functor over
/// [0, n) on the calling thread (a loop the compiler vectorizes), copy_bytes is memcpy.

namespace gradcomp::detail {

template <>
struct backend_impl<cpu_tag, for_each_element> {
  template <class F>
  static void run(const cpu_policy&, std::size_t n, const F& f) {
    for (std::size_t i = 0; i < n; ++i) {
      f(i);
    }
  }
};

template <>
struct backend_impl<cpu_tag, copy_bytes> {
  static void run(const cpu_policy&, void* dst, const void* src, std::size_t bytes) {
    if (bytes > 0) {
      std::memcpy(dst, src, bytes);
    }
  }
};

} // namespace gradcomp::detail
