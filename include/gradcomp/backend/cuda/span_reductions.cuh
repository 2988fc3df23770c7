// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../detail/reduction_replay.hpp"
#include "kernels.cuh"
#include "runtime.cuh"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

/// @file
/// span_reductions: the canonical reductions that compressors' scan() ask for, computed for many
/// spans of one device buffer in batched launches (one reduce_chunks and one combine_groups launch
/// per reduction slot, whatever the number of spans), copied to the host, then replayed into
/// scan() there (detail/reduction_replay.hpp), so the scales, and the errors, are the CPU's.
///
/// The dense device codec plans it once (its spans are the layout's); the composite codec plans
/// it on every call over the kept values, whose counts change from call to call. Planning
/// uploads a few tables of O(spans) entries on the stream; the device and pinned buffers keep
/// their size between plans and only grow when a plan needs more.

namespace gradcomp::detail::cuda {

/// One span to reduce: `size` elements of the buffer from element `begin`.
struct reduction_target {
  std::uint64_t begin = 0;
  std::uint64_t size = 0;
};

class span_reductions {
public:
  /// Plans the reductions of `targets`: probe(s, policy) runs span s's scan() (or
  /// scan_max_abs) with the probing `policy`; a non-empty span that asks for nothing still gets
  /// its max |x| (the finiteness check). The tables go to the device on `stream`.
  template <class Probe>
  void plan(const std::vector<reduction_target>& targets, Probe&& probe, cudaStream_t stream) {
    targets_ = targets;
    logs_.resize(targets.size());
    for (std::size_t s = 0; s < targets.size(); ++s) {
      reduction_log& log = logs_[s];
      log.probing = true;
      log.requests.clear();
      probe(s, reduction_replay{&log});
      if (targets[s].size > 0 && log.requests.empty()) {
        log.requests.push_back({math::sum_kind::none, 1});
      }
    }
    build_slots(stream);
    assign_sums();
  }

  /// Queues the reductions of x (the planned spans of it) and their copies to the host; the
  /// caller synchronizes the stream before max_bits() and replay(). `launches` counts the
  /// kernels and copies.
  template <class T>
  void launch(cudaStream_t stream, const T* x, std::size_t& launches) {
    constexpr unsigned warps = reduce_threads / warp;
    cuda_check(cudaMemsetAsync(span_max_.data(), 0, targets_.size() * 4, stream), "memset");
    ++launches;
    std::size_t sums_offset = 0;
    for (slot& sl : slots_) {
      const auto count = static_cast<std::uint32_t>(sl.host_spans.size());
      if (sl.chunks > 0) {
        reduce_chunks<T><<<grid_for(sl.chunks, warps), reduce_threads, 0, stream>>>(
            x, sl.spans.data(), sl.chunk_begin.data(), count, sl.chunks, chunk_sums_.data(),
            span_max_.data());
        ++launches;
      }
      if (sl.groups > 0) {
        const unsigned grid = grid_for(sl.groups, 1);
        double* sums = group_sums_.data() + sums_offset;
        if (sl.max_group_chunks > 256) { // big groups: 1024 threads share the tree
          combine_groups<10><<<grid, 1024, 0, stream>>>(sl.spans.data(), sl.sums_begin.data(),
                                                        count, sl.groups, sl.chunk_begin.data(),
                                                        chunk_sums_.data(), sums);
        } else {
          combine_groups<5><<<grid, 32, 0, stream>>>(sl.spans.data(), sl.sums_begin.data(), count,
                                                     sl.groups, sl.chunk_begin.data(),
                                                     chunk_sums_.data(), sums);
        }
        ++launches;
      }
      sums_offset += sl.groups;
    }
    cuda_check(cudaGetLastError(), "reduce kernels");
    if (total_groups_ > 0) {
      cuda_check(cudaMemcpyAsync(host_group_sums_.data(), group_sums_.data(),
                                 total_groups_ * sizeof(double), cudaMemcpyDeviceToHost, stream),
                 "copy reductions");
      ++launches;
    }
    if (!targets_.empty()) {
      cuda_check(cudaMemcpyAsync(host_span_max_.data(), span_max_.data(), targets_.size() * 4,
                                 cudaMemcpyDeviceToHost, stream),
                 "copy max");
      ++launches;
    }
  }

  /// Span s's max |x| bits (0 for an empty span), once the launch has completed.
  [[nodiscard]] std::uint32_t max_bits(std::size_t s) const {
    return targets_[s].size > 0 ? host_span_max_[s] : 0u;
  }
  /// The policy that replays span s's reductions into its scan(), once the launch has completed.
  [[nodiscard]] reduction_replay replay(std::size_t s) {
    logs_[s].start_replay(max_bits(s));
    return reduction_replay{&logs_[s]};
  }
  /// Device and pinned bytes held.
  [[nodiscard]] std::size_t bytes() const noexcept {
    return chunk_sums_.size() * 8 + group_sums_.size() * 16 + span_max_.size() * 8;
  }

private:
  /// The i-th reduce_groups request of every span that makes one.
  struct slot {
    std::vector<reduce_span> host_spans;
    std::vector<std::uint64_t> host_chunk_begin, host_sums_begin;
    device_array<reduce_span> spans;
    device_array<std::uint64_t> chunk_begin, sums_begin;
    std::uint64_t chunks = 0, groups = 0;
    std::uint64_t max_group_chunks = 0; ///< chunks of the largest group
  };

  template <class V>
  static void upload(const std::vector<V>& v, device_array<V>& d, cudaStream_t stream) {
    d.reserve(std::max<std::size_t>(v.size(), 1));
    if (!v.empty()) {
      cuda_check(
          cudaMemcpyAsync(d.data(), v.data(), v.size() * sizeof(V), cudaMemcpyHostToDevice, stream),
          "upload reduction tables");
    }
  }

  void build_slots(cudaStream_t stream) {
    std::size_t slots = 0;
    for (const auto& log : logs_) {
      slots = std::max(slots, log.requests.size());
    }
    slots_.resize(slots);
    std::size_t max_chunks = 0;
    total_groups_ = 0;
    for (std::size_t r = 0; r < slots; ++r) {
      slot& sl = slots_[r];
      sl.host_spans.clear();
      sl.host_chunk_begin.clear();
      sl.host_sums_begin.clear();
      sl.chunks = sl.groups = sl.max_group_chunks = 0;
      for (std::size_t s = 0; s < targets_.size(); ++s) {
        if (logs_[s].requests.size() <= r || targets_[s].size == 0) {
          continue;
        }
        const reduction_request req = logs_[s].requests[r];
        reduce_span sp;
        sp.global_begin = targets_[s].begin;
        sp.n = targets_[s].size;
        sp.kind = static_cast<std::uint32_t>(req.kind);
        sp.group = req.kind == math::sum_kind::none ? sp.n : req.group;
        sp.chunks_per_group = ceil_div(sp.group, math::canonical_chunk);
        sp.span = static_cast<std::uint32_t>(s);
        const std::uint64_t groups = ceil_div(sp.n, sp.group);
        const std::uint64_t last = sp.n - (groups - 1) * sp.group;
        sl.host_chunk_begin.push_back(sl.chunks);
        sl.chunks += (groups - 1) * sp.chunks_per_group + ceil_div(last, math::canonical_chunk);
        sl.max_group_chunks = std::max<std::uint64_t>(
            sl.max_group_chunks,
            ceil_div(std::min<std::uint64_t>(sp.group, sp.n), math::canonical_chunk));
        sp.sums_begin = sl.groups;
        sl.host_sums_begin.push_back(sl.groups);
        if (req.kind != math::sum_kind::none) {
          sl.groups += groups;
        }
        sl.host_spans.push_back(sp);
      }
      upload(sl.host_spans, sl.spans, stream);
      upload(sl.host_chunk_begin, sl.chunk_begin, stream);
      upload(sl.host_sums_begin, sl.sums_begin, stream);
      max_chunks = std::max<std::size_t>(max_chunks, sl.chunks);
      total_groups_ += sl.groups;
    }
    chunk_sums_.reserve(std::max<std::size_t>(max_chunks, 1));
    group_sums_.reserve(std::max<std::size_t>(total_groups_, 1));
    host_group_sums_.reserve(std::max<std::size_t>(total_groups_, 1));
    span_max_.reserve(std::max<std::size_t>(targets_.size(), 1));
    host_span_max_.reserve(std::max<std::size_t>(targets_.size(), 1));
  }

  /// Points every request of every span at its group sums in the host copy.
  void assign_sums() {
    std::vector<std::size_t>& cursor = cursor_;
    cursor.assign(slots_.size(), 0);
    std::size_t slot_offset = 0;
    for (std::size_t r = 0; r < slots_.size(); ++r) {
      cursor[r] = slot_offset;
      slot_offset += slots_[r].groups;
    }
    for (std::size_t s = 0; s < targets_.size(); ++s) {
      reduction_log& log = logs_[s];
      log.sums.assign(log.requests.size(), nullptr);
      if (targets_[s].size == 0) {
        continue;
      }
      for (std::size_t r = 0; r < log.requests.size(); ++r) {
        log.sums[r] = host_group_sums_.data() + cursor[r];
        if (log.requests[r].kind != math::sum_kind::none) {
          cursor[r] += ceil_div(targets_[s].size, log.requests[r].group);
        }
      }
    }
  }

  std::vector<reduction_target> targets_;
  std::vector<reduction_log> logs_;
  std::vector<slot> slots_;
  std::vector<std::size_t> cursor_;
  std::size_t total_groups_ = 0;
  device_array<double> chunk_sums_, group_sums_;
  pinned_array<double> host_group_sums_;
  device_array<std::uint32_t> span_max_;
  pinned_array<std::uint32_t> host_span_max_;
};

} // namespace gradcomp::detail::cuda

namespace gradcomp::detail {

/// reduce_groups under cuda_policy, for the framework's own reductions (DGC's clipping norm): x
/// in device memory, group_sums on the host, the CPU primitive's canonical sums bit for bit.
/// Synchronous; plans its span_reductions per call (the codec engines keep theirs).
template <>
struct backend_impl<cuda_tag, reduce_groups> {
  template <class T>
  static std::uint32_t run(const cuda_policy& exec, const T* x, std::size_t n, std::size_t group,
                           math::sum_kind kind, double* group_sums) {
    cuda::span_reductions r;
    r.plan(
        {{0, n}},
        [&](std::size_t, reduction_replay probe) {
          (void)backend_impl<replay_tag, reduce_groups>::run(probe, x, n, group, kind, group_sums);
        },
        exec.stream);
    std::size_t launches = 0;
    r.launch(exec.stream, x, launches);
    cuda_check(cudaStreamSynchronize(exec.stream), "reduce");
    return backend_impl<replay_tag, reduce_groups>::run(r.replay(0), x, n, group, kind, group_sums);
  }
};

} // namespace gradcomp::detail
