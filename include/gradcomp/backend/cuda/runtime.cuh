// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../error.hpp"
#include "../tags.hpp"

#include <cstddef>
#include <cuda_runtime.h>
#include <string>
#include <type_traits>
#include <utility>

/// @file
/// The CUDA execution policy and the little runtime gradcomp's CUDA backend needs: error
/// checking that throws gradcomp::error(errc::device_error), and owning device and pinned host
/// buffers. CUDA code lives only in .cuh headers; include <gradcomp/cuda.cuh> from a .cu file.

namespace gradcomp {

/// Runs gradcomp's primitives on a CUDA stream (the default stream when none is given).
struct cuda_policy {
  using backend_tag = cuda_tag;
  cudaStream_t stream = nullptr;
};

/// Whether a usable CUDA device is present (tests and benchmarks skip when not).
inline bool cuda_device_available() noexcept {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

namespace detail {

inline void cuda_check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    fail(errc::device_error, std::string(what) + ": " + cudaGetErrorName(status) + " (" +
                                 cudaGetErrorString(status) + ")");
  }
}

/// Device memory (cudaMalloc) and page-locked host memory (cudaMallocHost, for asynchronous
/// copies): the two allocators of owned_array.
struct device_memory {
  static void* allocate(std::size_t bytes) {
    void* p = nullptr;
    cuda_check(cudaMalloc(&p, bytes), "cudaMalloc");
    return p;
  }
  static void release(void* p) noexcept { cudaFree(p); }
};
struct pinned_memory {
  static void* allocate(std::size_t bytes) {
    void* p = nullptr;
    cuda_check(cudaMallocHost(&p, bytes), "cudaMallocHost");
    return p;
  }
  static void release(void* p) noexcept { cudaFreeHost(p); }
};

/// An owning array of n trivially copyable T from one of the allocators above; moves, never
/// copies.
template <class T, class Memory>
class owned_array {
public:
  owned_array() = default;
  explicit owned_array(std::size_t n) : size_(n) {
    if (n > 0) {
      data_ = static_cast<T*>(Memory::allocate(n * sizeof(T)));
    }
  }
  owned_array(owned_array&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  owned_array& operator=(owned_array&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    return *this;
  }
  owned_array(const owned_array&) = delete;
  owned_array& operator=(const owned_array&) = delete;
  ~owned_array() { Memory::release(data_); }

  [[nodiscard]] T* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// Grows (contents lost) to hold at least n elements.
  void reserve(std::size_t n) {
    if (n > size_) {
      *this = owned_array(n);
    }
  }
  /// Host access (pinned memory only).
  T& operator[](std::size_t i) const noexcept requires std::is_same_v<Memory, pinned_memory> {
    return data_[i];
  }

private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

template <class T>
using device_array = owned_array<T, device_memory>;
template <class T>
using pinned_array = owned_array<T, pinned_memory>;

} // namespace detail
} // namespace gradcomp
