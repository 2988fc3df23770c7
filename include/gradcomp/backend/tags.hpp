// SPDX-License-Identifier: Apache-2.0
#pragma once

/// @file
/// Backend tags and the CPU execution policy. Plain C++: never includes a CUDA header. The CUDA
/// policy (`gradcomp::cuda_policy`, with a stream) is defined only in <gradcomp/cuda.cuh>.

namespace gradcomp {

struct cpu_tag {};
struct cuda_tag {}; // nameable anywhere; usable only through <gradcomp/cuda.cuh>

/// Runs gradcomp's primitives on the CPU. `threads` is how many threads one call may use: 1 (the
/// default) keeps everything on the calling thread; more splits each pass over memory (scans,
/// codes, selection filters) into contiguous parts, one per thread, the first on the calling
/// thread; 0 means std::thread::hardware_concurrency(). Results never depend on the thread count:
/// parts are cut at block boundaries and combined in a fixed order, so the bytes are the same.
struct cpu_policy {
  using backend_tag = cpu_tag;
  unsigned threads = 1;
  friend constexpr bool operator==(cpu_policy, cpu_policy) = default;
};
/// The single-threaded CPU policy.
inline constexpr cpu_policy cpu{};
/// A CPU policy that splits every call over `threads` threads (0: all hardware threads).
[[nodiscard]] constexpr cpu_policy cpu_threads(unsigned threads) noexcept {
  return {threads};
}

template <class Exec>
concept execution_policy = requires {
  typename Exec::backend_tag;
};

} // namespace gradcomp
