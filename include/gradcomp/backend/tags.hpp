// SPDX-License-Identifier: Apache-2.0
#pragma once

/// @file
/// Backend tags and the CPU execution policy. Plain C++: never includes a CUDA header. The CUDA
/// policy (`gradcomp::cuda_policy`, with a stream) is defined only in <gradcomp/cuda.cuh>.

namespace gradcomp {

struct cpu_tag {};
struct cuda_tag {}; // nameable anywhere; usable only through <gradcomp/cuda.cuh>

/// Runs gradcomp's primitives on the calling CPU thread.
struct cpu_policy {
  using backend_tag = cpu_tag;
  friend constexpr bool operator==(cpu_policy, cpu_policy) = default;
};
inline constexpr cpu_policy cpu{};

template <class Exec>
concept execution_policy = requires {
  typename Exec::backend_tag;
};

} // namespace gradcomp
