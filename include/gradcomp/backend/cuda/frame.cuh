// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../../codec.hpp"
#include "../../detail/input_checks.hpp"
#include "../../encoding/wire_header.hpp"
#include "elementwise.cuh"
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
/// encoders' input errors, named by the CPU's checks on a host copy of the offending span.

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

/// The writes of a sparse or composite decode into out (whose entries reach some elements
/// only): check_output_range with write(std::true_type{}, flag), then, for an assignment, out
/// zeroed, then write(std::false_type{}, nullptr).
template <class T, bool Add, class Scheme, class Write>
void write_decoded(const codec<Scheme>& host, cudaStream_t st, std::span<T> out,
                   unsigned long long* flag, unsigned long long* host_flag, std::size_t& launches,
                   Write&& write) {
  check_output_range<T, Add>(host, st, flag, host_flag, launches,
                             [&](unsigned long long* f) { write(std::true_type{}, f); });
  if constexpr (!Add) {
    cuda_check(cudaMemsetAsync(out.data(), 0, out.size() * sizeof(T), st), "memset");
    ++launches;
  }
  write(std::false_type{}, nullptr);
  cuda_check(cudaGetLastError(), "decode kernels");
}

/// The CPU's input error for span s of a device gradient whose max |x| bits (mb) say it holds
/// a NaN or Inf, or a value at or beyond overflow_bits: the span is copied to the host and the
/// CPU's own checks (detail/input_checks.hpp) name the element. Never returns.
template <class Scheme, class T>
[[noreturn]] void fail_span_input(const codec<Scheme>& c, const cuda_policy& exec,
                                  std::span<const T> grad, std::size_t s, std::uint32_t mb,
                                  std::uint32_t overflow_bits = inf_abs_bits) {
  const span_desc& d = c.spans()[s];
  std::vector<T> x(d.size);
  copy_to(exec, x.data(), grad.data() + d.begin, d.size * sizeof(T));
  auto name = [&] { return c.span_name(s); };
  require_finite(mb, x.data(), d.size, d.begin, name);
  require_in_range(mb, overflow_bits, x.data(), name);
  fail(errc::value_out_of_range, name() + ": out-of-range gradient value");
}

/// The CPU decoder's error for the first fault of each kind the payload checks recorded
/// (read_scales, validate_tiles): found[0] a scale (numbered across spans from scale_begin(s)),
/// found[1] a code (numbered from each span's begin; `code_unit` names what it codes), found[2]
/// padding; ~0 where none. Returns when there is none.
template <class Scheme, class ScaleBegin>
void report_code_faults(const codec<Scheme>& c, const unsigned long long* found,
                        ScaleBegin scale_begin, const char* code_unit) {
  constexpr unsigned long long none = ~0ull;
  const auto& plan = c.spans();
  if (found[0] != none) {
    const std::size_t s = last_span_at(plan.size(), found[0], scale_begin);
    fail(errc::corrupt_payload, c.span_name(s) + ": scale " +
                                    std::to_string(found[0] - scale_begin(s)) +
                                    " is invalid (non-finite or negative)");
  }
  if (found[1] != none) {
    const std::size_t s =
        last_span_at(plan.size(), found[1], [&](std::size_t i) { return plan[i].begin; });
    fail(errc::corrupt_payload, c.span_name(s) + ": invalid code at " + code_unit + " " +
                                    std::to_string(found[1] - plan[s].begin));
  }
  if (found[2] != none) {
    fail(errc::corrupt_payload, "a span's padding bits after the last code are not zero");
  }
}

} // namespace gradcomp::detail::cuda
