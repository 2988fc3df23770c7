// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../error.hpp"
#include "../math/canonical_sum.hpp"
#include "bits.hpp"
#include "dispatch.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

/// @file
/// Runs a compressor's scan() against reductions computed elsewhere. A compressor turns the
/// canonical reductions of a span (max |x|, per-group sums of x, x^2 or |x|) into its scales
/// with host code (norm = sqrt(sum), TernGrad's clipping, range checks). A batched backend (CUDA)
/// computes the reductions of every span in one launch; this policy then replays scan() on the
/// host with those results, so the scales, and the errors, are exactly the CPU's.
///  - probe: scan() is run once per span with `probing` set; each reduce_groups call is recorded
///    as a request (its kind and group size) and answered with zeros;
///  - replay: the same calls are answered, in order, from `max_bits` and `sums[i]`; a call that
///    differs from the probed sequence is an error (a compressor whose requests depend on the
///    data cannot be batched).
/// Plain C++: the CUDA backend uses it, and the CPU tests check it against a direct scan().

namespace gradcomp::detail {

struct replay_tag {};

struct reduction_request {
  math::sum_kind kind = math::sum_kind::none;
  std::size_t group = 1;
  friend bool operator==(const reduction_request&, const reduction_request&) = default;
};

/// One span's reductions: what scan() asked for, and (for a replay) the answers.
struct reduction_log {
  bool probing = true;
  std::vector<reduction_request> requests;
  std::uint32_t max_bits = 0;
  std::vector<const double*> sums; ///< replay: per request, its group sums (unused for none)
  std::size_t next = 0;

  /// Switches to replay with the span's max |x| bits; `sums` must hold the group sums.
  void start_replay(std::uint32_t mb) noexcept {
    probing = false;
    max_bits = mb;
    next = 0;
  }
};

/// The execution policy scan() is called with for a probe or a replay.
struct reduction_replay {
  using backend_tag = replay_tag;
  reduction_log* log = nullptr;
};

template <>
struct backend_impl<replay_tag, reduce_groups> {
  template <class T>
  static std::uint32_t run(const reduction_replay& policy, const T*, std::size_t n,
                           std::size_t group, math::sum_kind kind, double* group_sums) {
    reduction_log& log = *policy.log;
    const std::size_t groups = kind == math::sum_kind::none ? 0 : ceil_div(n, group);
    if (log.probing) {
      log.requests.push_back({kind, kind == math::sum_kind::none ? 1 : group});
      std::fill(group_sums, group_sums + groups, 0.0);
      return 0;
    }
    const std::size_t i = log.next++;
    require(i < log.requests.size() &&
                log.requests[i] ==
                    reduction_request{kind, kind == math::sum_kind::none ? 1 : group},
            errc::invalid_parameter,
            "compressor asked for reduction " + std::to_string(i) +
                " that its probe did not: its scan cannot run on a batched backend");
    if (groups > 0) {
      std::copy(log.sums[i], log.sums[i] + groups, group_sums);
    }
    return log.max_bits;
  }
};

} // namespace gradcomp::detail
