// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../backend/tags.hpp"

#include <cstddef>
#include <cstdint>
#include <utility>

/// @file
/// Tag dispatch: every algorithm is written once against a small vocabulary of primitives, and
/// each backend specializes backend_impl<Tag, Primitive>. A missing pair is one readable error.

namespace gradcomp::detail {

// Primitive ids.
struct reduce_groups {};    // canonical per-group sums (double) + max |x| bits
struct select_top_keys {};  // exact k largest keys, ties to the lower index, ascending (+ max key)
struct select_where {};     // indices where a predicate holds, ascending
struct select_at_least {};  // indices whose key is at least a threshold, ascending (+ max key)
struct select_sample {};    // a sample rule's subset (first distinct draws), indices ascending
struct encode_codes {};     // per-element coder + fixed-width bit packing
struct decode_codes {};     // unpacking + per-element decoder (validate, or write)
struct for_each_element {}; // f(i) for i in [0, n), f a GRADCOMP_HOST_DEVICE functor (may be async)
struct copy_bytes {};       // bytes between the backend's memory and the host (returns when done)
struct sum_checksum_blocks {}; // summed digests of a host message's checksum blocks [first, end)

/// validate: check every code; measure: check, and find the largest |decoded value|; assign or
/// add: write the decoded values (to a validated message's codes).
enum class decode_mode { validate, measure, assign, add };

/// What validating codes found: the index of the first invalid code (n when all are valid) and,
/// with decode_mode::measure, the largest |decoded value| as fp32 bits; where the backend hashed
/// the message's checksum blocks as it read them (detail/prehashed_blocks.hpp), their digest sum.
struct code_check {
  std::size_t first_invalid = 0;
  std::uint32_t max_abs_bits = 0;
  std::uint64_t digest_sum = 0;
};

template <class>
inline constexpr bool dependent_false_v = false;

template <class BackendTag, class Primitive>
struct backend_impl {
  static_assert(dependent_false_v<BackendTag>,
                "gradcomp: primitive not implemented for this backend. "
                "For gradcomp::cuda, include <gradcomp/cuda.cuh> in a .cu file.");
};

/// A backend that runs whole codec calls on its own buffers (CUDA: device memory) specializes
/// codec_offload<Tag> with `enabled = true` and `engine(codec)`, the state it keeps in the
/// codec's engine slot; codec<Scheme> forwards its calls under such a policy there.
template <class BackendTag>
struct codec_offload {
  static constexpr bool enabled = false;
};
template <class Exec>
inline constexpr bool offloaded_v = codec_offload<typename Exec::backend_tag>::enabled;

template <class Primitive, class Exec, class... Args>
decltype(auto) run(const Exec& exec, Args&&... args) {
  return backend_impl<typename Exec::backend_tag, Primitive>::run(exec,
                                                                  std::forward<Args>(args)...);
}

} // namespace gradcomp::detail
