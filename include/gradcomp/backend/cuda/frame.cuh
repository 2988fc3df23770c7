// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../codec.hpp"
#include "../../encoding/wire_header.hpp"
#include "kernels.cuh"
#include "runtime.cuh"

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

/// @file
/// The frame of a device message, read on the host: the header and directory are copied back,
/// the checksum is computed on the device, and the frame is validated with the CPU's checks
/// (detail::parse_frame_fields, codec::check_frame), so errors are the CPU decoder's. And the
/// rare path of an encode: the gradient encoded by the CPU codec.

namespace gradcomp::detail::cuda {

/// Host-side buffers the frame check reuses between calls.
struct frame_buffers {
  pinned_array<std::byte> prefix;
  device_array<unsigned long long> scratch{2};
  pinned_array<unsigned long long> checksum{1};
};

/// Validates the frame of `message` (device bytes) for `host`'s plan; returns it parsed.
/// Synchronizes the stream once. `launches` counts the copies and kernels issued.
template <class Scheme>
message_info read_device_frame(cudaStream_t stream, const codec<Scheme>& host,
                               std::span<const std::byte> message, frame_buffers& buf,
                               std::size_t& launches) {
  const std::size_t S = host.spans().size();
  buf.prefix.reserve(wire_header_bytes + S * wire_directory_entry_bytes);
  const std::size_t prefix_bytes =
      std::min(message.size(), wire_header_bytes + S * wire_directory_entry_bytes);
  if (prefix_bytes > 0) {
    cuda_check(cudaMemcpyAsync(buf.prefix.data(), message.data(), prefix_bytes,
                               cudaMemcpyDeviceToHost, stream),
               "copy frame");
    ++launches;
  }
  if (message.size() >= wire_header_bytes) {
    checksum_async(stream,
                   const_cast<std::uint8_t*>(reinterpret_cast<const std::uint8_t*>(message.data())),
                   message.size(), buf.scratch.data(), false);
    cuda_check(cudaMemcpyAsync(buf.checksum.data(), buf.scratch.data() + 1, 8,
                               cudaMemcpyDeviceToHost, stream),
               "copy checksum");
    launches += 4;
  }
  cuda_check(cudaStreamSynchronize(stream), "decode frame");
  const std::span<const std::byte> prefix(buf.prefix.data(), prefix_bytes);
  check_frame_start(prefix, message.size());
  check_checksum(load_le<std::uint64_t>(prefix.data() + wire_checksum_offset), buf.checksum[0]);
  const auto span_count = load_le<std::uint32_t>(prefix.data() + 12);
  require(span_count == S, errc::layout_mismatch,
          "message has " + std::to_string(span_count) + " spans, plan has " + std::to_string(S));
  const message_info info = parse_frame_fields(prefix, message.size());
  host.check_frame(info);
  return info;
}

/// The CPU codec's checks of a gradient's and an output's size against the layout.
/// Before a decode into T writes anything, where a finite decoded value may not fit (T narrower
/// than fp32, or decode_add): `launch_checks(flag)` issues the decode kernels with Check, which
/// record the lowest overflowing global element in *flag; then value_out_of_range names it as
/// the CPU decoder does. Synchronizes the stream once; nothing for an fp32 assignment.
template <class T, bool Add, class Scheme, class LaunchChecks>
void check_output_range(const codec<Scheme>& host, cudaStream_t st, unsigned long long* flag,
                        unsigned long long* host_flag, std::size_t& launches,
                        LaunchChecks&& launch_checks) {
  if constexpr (!std::is_same_v<T, float> || Add) {
    cuda_check(cudaMemsetAsync(flag, 0xff, sizeof(unsigned long long), st), "memset");
    launch_checks(flag);
    cuda_check(
        cudaMemcpyAsync(host_flag, flag, sizeof(unsigned long long), cudaMemcpyDeviceToHost, st),
        "copy range check");
    launches += 2;
    cuda_check(cudaStreamSynchronize(st), "range check");
    const unsigned long long g = *host_flag;
    if (g == ~0ull) {
      return;
    }
    const auto& plan = host.spans(); // spans are in buffer order: the last non-empty at or before g
    std::size_t s = 0;
    for (std::size_t i = 0; i < plan.size(); ++i) {
      if (plan[i].size > 0 && plan[i].begin <= g) {
        s = i;
      }
    }
    fail(errc::value_out_of_range,
         std::string(Add ? "the sum of a decoded value and the output" : "a decoded value") +
             " in " + host.span_name(s) + " at element " + std::to_string(g - plan[s].begin) +
             " overflows the output's " + std::string(value_traits<T>::name));
  }
}

/// The rare path of a sparse device encode (a span whose max |x| may not fit the value type once
/// scaled, or is not finite): the gradient goes to the host and the owning codec's CPU backend
/// encodes it, or throws its exact error, and the message comes back. Returns its size.
template <class Scheme, class T>
std::size_t encode_on_host(codec<Scheme>& host, const cuda_policy& exec, std::span<const T> grad,
                           std::span<std::byte> out, const stream_key& key) {
  std::vector<T> x(grad.size());
  cuda_check(cudaMemcpy(x.data(), grad.data(), grad.size() * sizeof(T), cudaMemcpyDeviceToHost),
             "copy gradient");
  std::vector<std::byte> msg(host.template max_encoded_bytes<T>());
  msg.resize(host.encode(cpu, std::span<const T>(x), std::span<std::byte>(msg), key));
  require(out.size() >= msg.size(), errc::buffer_too_small,
          "message needs " + std::to_string(msg.size()) + " bytes, output has " +
              std::to_string(out.size()));
  cuda_check(
      cudaMemcpyAsync(out.data(), msg.data(), msg.size(), cudaMemcpyHostToDevice, exec.stream),
      "copy message");
  cuda_check(cudaStreamSynchronize(exec.stream), "copy message");
  return msg.size();
}

} // namespace gradcomp::detail::cuda
