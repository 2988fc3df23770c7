// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../config.hpp"
#include "rounding_barrier.hpp"

#include <cstddef>
#include <cstdint>

/// @file
/// The per-element steps of Algorithm 1 (error feedback, DGC momentum, the master's aggregate),
/// written once as GRADCOMP_HOST_DEVICE functors over raw pointers that every backend runs
/// through the for_each_element primitive: the same fp32 operations in the same order, so the
/// CPU and the device keep bit-identical residuals, momenta and aggregates.

namespace gradcomp::detail {

/// p = scale * g + e, the product rounded before the sum (no FMA on any build).
struct feedback_input {
  rounding_barrier keep;
  float scale;
  const float* g;
  const float* e;
  float* p;
  GRADCOMP_HOST_DEVICE void operator()(std::size_t i) const { p[i] = keep(scale * g[i]) + e[i]; }
};

/// e = p - Delta: what the message did not carry.
struct feedback_residual {
  const float* p;
  const float* sent;
  float* e;
  GRADCOMP_HOST_DEVICE void operator()(std::size_t i) const { e[i] = p[i] - sent[i]; }
};

/// DGC before the message: u' = m u + s g (both products rounded), v' = v + u'.
struct dgc_accumulate {
  rounding_barrier keep;
  float momentum;
  float g_scale;
  const float* g;
  const float* u;
  const float* v;
  float* next_u;
  float* next_v;
  GRADCOMP_HOST_DEVICE void operator()(std::size_t i) const {
    next_u[i] = keep(momentum * u[i]) + keep(g[i] * g_scale);
    next_v[i] = v[i] + next_u[i];
  }
};

/// DGC after the message: v <- 0 where it sent a value, else v'; u <- 0 there too with momentum
/// masking, else u'.
struct dgc_mask {
  const std::uint8_t* sent;
  const float* next_u;
  const float* next_v;
  float* u;
  float* v;
  bool mask_momentum;
  GRADCOMP_HOST_DEVICE void operator()(std::size_t i) const {
    const bool was_sent = sent[i] != 0;
    v[i] = was_sent ? 0.0f : next_v[i];
    u[i] = was_sent && mask_momentum ? 0.0f : next_u[i];
  }
};

template <class T>
struct fill_value {
  T* x;
  T v;
  GRADCOMP_HOST_DEVICE void operator()(std::size_t i) const { x[i] = v; }
};

/// The mean of n workers' sum.
struct mean_of_sum {
  const float* sum;
  float n;
  float* out;
  GRADCOMP_HOST_DEVICE void operator()(std::size_t i) const { out[i] = sum[i] / n; }
};

/// Majority vote: one worker's decoded signs counted, then the vote (ties +1, like sign(0)).
struct count_vote {
  const float* decoded;
  std::int32_t* votes;
  GRADCOMP_HOST_DEVICE void operator()(std::size_t i) const {
    votes[i] += decoded[i] > 0.0f ? 1 : -1;
  }
};
/// Majority vote from exact sums of the signs (level sums): ties +1.
struct vote_of_sum {
  const float* sum;
  float* out;
  GRADCOMP_HOST_DEVICE void operator()(std::size_t i) const {
    out[i] = sum[i] >= 0.0f ? 1.0f : -1.0f;
  }
};
struct vote_result {
  const std::int32_t* votes;
  float* out;
  GRADCOMP_HOST_DEVICE void operator()(std::size_t i) const {
    out[i] = votes[i] >= 0 ? 1.0f : -1.0f;
  }
};

} // namespace gradcomp::detail
