// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../comm/exchange_envelope.hpp"
#include "../../error.hpp"
#include "runtime.cuh"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cuda_runtime.h>
#include <nccl.h>
#include <span>
#include <string>
#include <thread>
#include <vector>

/// @file
/// The NCCL transport: the operations of mpi_communicator (comm/mpi.hpp) on device buffers, on
/// one CUDA stream, each bounded by a timeout. NCCL has no allgatherv: variable-size messages go
/// by grouped ncclSend/ncclRecv pairs (no padding to the largest message). Envelopes are staged
/// through pinned host memory and ncclAllGather'ed, then checked on the host exactly as over MPI.
///
/// Waiting polls cudaStreamQuery and ncclCommGetAsyncError until the timeout; then the
/// communicator is aborted (ncclCommAbort), refuses further use, and the error is errc::timeout.
/// A collective cannot say which rank is missing: the timeout names the operation. NCCL errors
/// are errc::transport_error, CUDA errors errc::device_error.
///
/// The caller creates the ncclComm_t (ncclCommInitRank with an id shared over MPI or a file;
/// nccl_communicator::single_gpu for one rank) and keeps it alive; this class does not own it
/// unless made by single_gpu.

namespace gradcomp {

class nccl_communicator {
public:
  struct options {
    std::chrono::milliseconds timeout{std::chrono::seconds(120)};
  };

  nccl_communicator(ncclComm_t comm, cudaStream_t stream) : nccl_communicator(comm, stream, {}) {}
  nccl_communicator(ncclComm_t comm, cudaStream_t stream, options opt)
      : comm_(comm), stream_(stream), opt_(opt) {
    check(ncclCommUserRank(comm_, &rank_), "ncclCommUserRank");
    check(ncclCommCount(comm_, &size_), "ncclCommCount");
    host_envelopes_ = detail::pinned_array<std::byte>(envelope_bytes * size());
    device_envelopes_ = detail::device_array<std::byte>(envelope_bytes * size());
  }
  /// A one-rank communicator on the current device (what a single GPU can run).
  static nccl_communicator single_gpu(cudaStream_t stream) { return single_gpu(stream, {}); }
  static nccl_communicator single_gpu(cudaStream_t stream, options opt) {
    int device = 0;
    detail::cuda_check(cudaGetDevice(&device), "cudaGetDevice");
    ncclComm_t comm = nullptr;
    const ncclResult_t rc = ncclCommInitAll(&comm, 1, &device);
    detail::require(rc == ncclSuccess, errc::transport_error,
                    std::string("ncclCommInitAll: ") + ncclGetErrorString(rc));
    nccl_communicator c(comm, stream, opt);
    c.owned_ = true;
    return c;
  }
  nccl_communicator(const nccl_communicator&) = delete;
  nccl_communicator& operator=(const nccl_communicator&) = delete;
  nccl_communicator(nccl_communicator&& o) noexcept
      : comm_(o.comm_), stream_(o.stream_), opt_(o.opt_), rank_(o.rank_), size_(o.size_),
        owned_(o.owned_), broken_(o.broken_), host_envelopes_(std::move(o.host_envelopes_)),
        device_envelopes_(std::move(o.device_envelopes_)) {
    o.owned_ = false;
  }
  nccl_communicator& operator=(nccl_communicator&&) = delete;
  ~nccl_communicator() {
    if (owned_) {
      (void)(broken_ ? ncclCommAbort(comm_) : ncclCommDestroy(comm_));
    }
  }

  [[nodiscard]] std::size_t rank() const noexcept { return static_cast<std::size_t>(rank_); }
  [[nodiscard]] std::size_t size() const noexcept { return static_cast<std::size_t>(size_); }
  [[nodiscard]] cudaStream_t stream() const noexcept { return stream_; }

  /// Every rank's envelope on every rank (index = rank).
  std::vector<exchange_envelope> exchange_envelopes(const exchange_envelope& mine) {
    usable();
    const std::size_t n = size();
    std::byte* const host = host_envelopes_.data(); // staging allocated once, at construction
    std::byte* const dev = device_envelopes_.data();
    const auto bytes = mine.serialize();
    std::copy(bytes.begin(), bytes.end(), host + envelope_bytes * rank());
    detail::cuda_check(cudaMemcpyAsync(dev + envelope_bytes * rank(),
                                       host + envelope_bytes * rank(), envelope_bytes,
                                       cudaMemcpyHostToDevice, stream_),
                       "cudaMemcpyAsync");
    check(ncclAllGather(dev + envelope_bytes * rank(), dev, envelope_bytes, ncclUint8, comm_,
                        stream_),
          "ncclAllGather");
    detail::cuda_check(
        cudaMemcpyAsync(host, dev, envelope_bytes * n, cudaMemcpyDeviceToHost, stream_),
        "cudaMemcpyAsync");
    wait("the allgather of envelopes");
    std::vector<exchange_envelope> envs(n);
    for (std::size_t r = 0; r < n; ++r) {
      envs[r] = r == rank()
                    ? mine
                    : exchange_envelope::parse(std::span<const std::byte, envelope_bytes>(
                                                   host + envelope_bytes * r, envelope_bytes),
                                               r);
    }
    return envs;
  }

  /// All ranks' device messages, back to back in rank order, into `out` (device memory of at
  /// least the sum of sizes); sizes[r] as announced by rank r's envelope. Returns the offsets.
  std::vector<std::size_t> allgatherv(const std::byte* mine, std::span<const std::size_t> sizes,
                                      std::byte* out, std::size_t out_capacity) {
    usable();
    const auto offsets = offsets_of(sizes, out_capacity);
    check(ncclGroupStart(), "ncclGroupStart");
    for (int r = 0; r < size_; ++r) {
      const auto ur = static_cast<std::size_t>(r);
      if (r == rank_) {
        detail::cuda_check(
            cudaMemcpyAsync(out + offsets[ur], mine, sizes[ur], cudaMemcpyDeviceToDevice, stream_),
            "cudaMemcpyAsync");
        continue;
      }
      check(ncclSend(mine, sizes[rank()], ncclUint8, r, comm_, stream_), "ncclSend");
      check(ncclRecv(out + offsets[ur], sizes[ur], ncclUint8, r, comm_, stream_), "ncclRecv");
    }
    check(ncclGroupEnd(), "ncclGroupEnd");
    wait("the allgatherv of messages");
    return offsets;
  }

  /// The root's `bytes` device bytes into every rank's `buf`.
  void broadcast(std::byte* buf, std::size_t bytes, std::size_t root) {
    usable();
    detail::require(root < size(), errc::invalid_parameter,
                    "root rank " + std::to_string(root) + " of " + std::to_string(size()));
    check(ncclBroadcast(buf, buf, bytes, ncclUint8, static_cast<int>(root), comm_, stream_),
          "ncclBroadcast");
    wait("the broadcast from root rank " + std::to_string(root));
  }

  /// Elementwise maximum over ranks of `count` device floats, in place.
  void allreduce_max(float* v, std::size_t count) {
    usable();
    check(ncclAllReduce(v, v, count, ncclFloat32, ncclMax, comm_, stream_), "ncclAllReduce");
    wait("the allreduce of scales");
  }

private:
  std::vector<std::size_t> offsets_of(std::span<const std::size_t> sizes,
                                      std::size_t capacity) const {
    detail::require(sizes.size() == size(), errc::size_mismatch,
                    std::to_string(sizes.size()) + " message sizes for " + std::to_string(size()) +
                        " ranks");
    std::vector<std::size_t> offsets(1, 0);
    for (const std::size_t s : sizes) {
      detail::require(s <= capacity - offsets.back(), errc::buffer_too_small,
                      "the messages need more than the " + std::to_string(capacity) +
                          " bytes of the receive buffer");
      offsets.push_back(offsets.back() + s);
    }
    return offsets;
  }

  void wait(const std::string& what) {
    const auto deadline = std::chrono::steady_clock::now() + opt_.timeout;
    for (long polls = 0;; ++polls) {
      const cudaError_t q = cudaStreamQuery(stream_);
      if (q == cudaSuccess) {
        return;
      }
      if (q != cudaErrorNotReady) {
        broken_ = true;
        detail::cuda_check(q, "cudaStreamQuery");
      }
      ncclResult_t async = ncclSuccess;
      check(ncclCommGetAsyncError(comm_, &async), "ncclCommGetAsyncError");
      check(async, "an NCCL operation");
      if (std::chrono::steady_clock::now() > deadline) {
        broken_ = true;
        (void)ncclCommAbort(comm_);
        owned_ = false;
        detail::fail(errc::timeout, what + " did not complete within " +
                                        std::to_string(opt_.timeout.count()) +
                                        " ms (NCCL cannot name the missing rank)");
      }
      if (polls > 2000) {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    }
  }

  void usable() const {
    detail::require(
        !broken_, errc::protocol_error,
        "this NCCL communicator failed earlier (timeout or NCCL error) and was aborted");
  }

  void check(ncclResult_t rc, const char* call) {
    if (rc != ncclSuccess) {
      broken_ = true;
      detail::fail(errc::transport_error, std::string(call) + " failed: " + ncclGetErrorString(rc));
    }
  }

  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  options opt_;
  int rank_ = 0;
  int size_ = 1;
  bool owned_ = false;
  bool broken_ = false;
  detail::pinned_array<std::byte> host_envelopes_;   ///< every rank's envelope, host side
  detail::device_array<std::byte> device_envelopes_; ///< the same, for ncclAllGather
};

} // namespace gradcomp
