// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../backend/tags.hpp"
#include "dispatch.hpp"

#include <cstddef>
#include <span>
#include <vector>

/// @file
/// Owned state in a backend's memory: buffer_t<Tag, T> is a zero-filled array of n T where the
/// backend's primitives can reach it (std::vector for the CPU; device memory under CUDA, from
/// <gradcomp/cuda.cuh>), with data() and size(). default_policy_t<Tag> is the policy the
/// framework uses for calls that take none (reset, restore): the CPU's one thread, CUDA's default
/// stream.

namespace gradcomp::detail {

template <class BackendTag, class T>
struct buffer_for {
  static_assert(dependent_false_v<BackendTag>,
                "gradcomp: no buffers for this backend. For gradcomp::cuda, include "
                "<gradcomp/cuda.cuh> in a .cu file.");
};
template <class T>
struct buffer_for<cpu_tag, T> {
  using type = std::vector<T>;
};
template <class BackendTag, class T>
using buffer_t = typename buffer_for<BackendTag, T>::type;

template <class BackendTag>
struct default_policy;
template <>
struct default_policy<cpu_tag> {
  using type = cpu_policy;
};
template <class BackendTag>
using default_policy_t = typename default_policy<BackendTag>::type;

/// The elements of a buffer as a span (read-only through a const buffer).
template <class Buffer>
[[nodiscard]] auto view(Buffer& b) noexcept {
  return std::span(b.data(), b.size());
}

/// Copies `bytes` bytes from src to dst (either may be host or backend memory).
template <class Exec>
void copy_to(const Exec& exec, void* dst, const void* src, std::size_t bytes) {
  run<copy_bytes>(exec, dst, src, bytes);
}

/// The n T of `s`, in exec's backend memory, readable on the host: `s` itself on the CPU, a copy
/// in `staging` when the backend offloads.
template <class Exec, class T>
[[nodiscard]] std::span<const T> host_view(const Exec& exec, std::span<const T> s,
                                           std::vector<T>& staging) {
  if constexpr (offloaded_v<Exec>) {
    staging.resize(s.size());
    copy_to(exec, staging.data(), s.data(), s.size_bytes());
    return staging;
  } else {
    (void)exec;
    (void)staging;
    return s;
  }
}

} // namespace gradcomp::detail
