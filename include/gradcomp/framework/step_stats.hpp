// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../encoding/wire_header.hpp"
#include "../granularity/span_plan.hpp"
#include "../layout/model_layout.hpp"

#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

/// @file
/// Exact per-step statistics of one round of Algorithm 1: bytes per span (of the worker plan for
/// the upward messages, of the master plan for the broadcast) and in total, the relative
/// compression error per span, and wall times.

namespace gradcomp {

struct span_traffic {
  std::string name; ///< the layer's name, or "span s" for flat and bucket spans
  std::size_t elements = 0;
  std::size_t payload_bytes = 0; ///< summed over the messages counted (all workers, upward)
  double error = 0; ///< sum over messages of ||Q(p) - p||^2 / sum of ||p||^2 (0 when p = 0)
};

struct step_stats {
  std::vector<span_traffic> up;   ///< per span of Q_W's plan, all workers together
  std::vector<span_traffic> down; ///< per span of Q_M's plan, one broadcast
  std::size_t bytes_up = 0;       ///< all workers' messages, headers included
  std::size_t bytes_down = 0;     ///< the broadcast times the number of workers receiving it
  double seconds_compress = 0;    ///< all workers' Q_W (with scale sharing and error feedback)
  double seconds_aggregate = 0;   ///< the master: decode, sum or vote, Q_M
  double seconds_decompress = 0;  ///< one worker decoding the broadcast
  /// Over MPI (mpi_cluster), this rank's share of the step: bytes it sent and received through
  /// the communicator (envelopes included) and gradient elements it decoded (messages it
  /// aggregated and the broadcast). Zero in one process.
  std::size_t rank_bytes_sent = 0;
  std::size_t rank_bytes_received = 0;
  std::size_t rank_elements_decoded = 0;
};

namespace detail {

/// Names and sizes of a plan's spans, zeroed counters.
inline std::vector<span_traffic> traffic_table(const std::vector<span_desc>& plan,
                                               const model_layout& layout) {
  std::vector<span_traffic> t(plan.size());
  for (std::size_t s = 0; s < plan.size(); ++s) {
    t[s].name = plan[s].layer != span_desc::no_layer ? layout[plan[s].layer].name
                                                     : "span " + std::to_string(s);
    t[s].elements = plan[s].size;
  }
  return t;
}

/// Adds a message's per-span payload bytes and (when p and q are given) squared errors.
inline void count_message(std::span<const std::byte> msg, const std::vector<span_desc>& plan,
                          std::span<const float> p, std::span<const float> q,
                          std::vector<span_traffic>& table, std::vector<double>& err,
                          std::vector<double>& norm) {
  const message_info info = inspect_message(msg);
  for (std::size_t s = 0; s < plan.size(); ++s) {
    table[s].payload_bytes += info.spans[s].bytes;
    for (std::size_t i = plan[s].begin; i < plan[s].begin + plan[s].size && !p.empty(); ++i) {
      const double d = static_cast<double>(q[i]) - p[i];
      err[s] += d * d;
      norm[s] += static_cast<double>(p[i]) * p[i];
    }
  }
}

/// The three phase times of a step from its four time points.
template <class TimePoint>
void record_times(step_stats& st, TimePoint t0, TimePoint t1, TimePoint t2, TimePoint t3) {
  st.seconds_compress = std::chrono::duration<double>(t1 - t0).count();
  st.seconds_aggregate = std::chrono::duration<double>(t2 - t1).count();
  st.seconds_decompress = std::chrono::duration<double>(t3 - t2).count();
}

inline void finish_errors(std::vector<span_traffic>& table, const std::vector<double>& err,
                          const std::vector<double>& norm) {
  for (std::size_t s = 0; s < table.size(); ++s) {
    table[s].error = norm[s] > 0 ? err[s] / norm[s] : 0.0;
  }
}

} // namespace detail
} // namespace gradcomp
