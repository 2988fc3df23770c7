// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../detail/backend_buffer.hpp"
#include "../../detail/dispatch.hpp"
#include "launch.cuh"
#include "runtime.cuh"

#include <cstddef>
#include <cstdint>

/// @file
/// The CUDA backend's elementwise primitives and buffers: for_each_element launches one
/// grid-stride kernel on the policy's stream (asynchronous), copy_bytes is cudaMemcpyAsync with
/// the direction inferred from the pointers, then a synchronization; buffer_t<cuda_tag, T> is a
/// zero-filled device array.

namespace gradcomp {
namespace detail::cuda {

template <class F>
__global__ void for_each_kernel(std::uint64_t n, F f) {
  const std::uint64_t stride = std::uint64_t{gridDim.x} * blockDim.x;
  for (std::uint64_t i = std::uint64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += stride) {
    f(static_cast<std::size_t>(i));
  }
}

/// n zero-filled T in device memory (buffer_t<cuda_tag, T>); moves, never copies.
template <class T>
class device_vector {
public:
  device_vector() = default;
  explicit device_vector(std::size_t n) : data_(n) {
    if (n > 0) {
      cuda_check(cudaMemset(data_.data(), 0, n * sizeof(T)), "cudaMemset");
    }
  }
  [[nodiscard]] T* data() const noexcept { return data_.data(); }
  [[nodiscard]] std::size_t size() const noexcept { return data_.size(); }
  [[nodiscard]] T* begin() const noexcept { return data(); }
  [[nodiscard]] T* end() const noexcept { return data() + size(); }

private:
  device_array<T> data_;
};

} // namespace detail::cuda

namespace detail {

template <>
struct backend_impl<cuda_tag, for_each_element> {
  template <class F>
  static void run(const cuda_policy& exec, std::size_t n, const F& f) {
    if (n == 0) {
      return;
    }
    constexpr unsigned threads = 256;
    cuda::for_each_kernel<<<cuda::grid_for(n, threads), threads, 0, exec.stream>>>(n, f);
    cuda_check(cudaGetLastError(), "elementwise kernel");
  }
};

template <>
struct backend_impl<cuda_tag, copy_bytes> {
  static void run(const cuda_policy& exec, void* dst, const void* src, std::size_t bytes) {
    if (bytes == 0) {
      return;
    }
    cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, exec.stream), "copy");
    cuda_check(cudaStreamSynchronize(exec.stream), "copy");
  }
};

template <class T>
struct buffer_for<cuda_tag, T> {
  using type = cuda::device_vector<T>;
};
template <>
struct default_policy<cuda_tag> {
  using type = cuda_policy;
};

} // namespace detail
} // namespace gradcomp
