// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../error.hpp"
#include "../framework/step_stats.hpp"
#include "mpi.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

/// @file
/// Rounds that every topology of mpi_cluster shares: the master's pass over the received
/// messages in rank order, TernGrad's scaler sharing (the elementwise max over ranks), and the
/// per-span tables of one worker's message and broadcast.

namespace gradcomp::detail {

/// The master's round on the n messages back to back in `bytes` (rank r's at [offsets[r],
/// offsets[r + 1])), in rank order, then Q_M. A message that fails is named by its rank and
/// `what` (" for shard 2").
template <class Master, class Exec>
std::span<const std::byte>
aggregate_in_rank_order(const Exec& exec, Master& master, std::uint64_t step,
                        std::span<const std::byte> bytes, const std::vector<std::size_t>& offsets,
                        const std::string& what = {}) {
  master.begin(step);
  for (std::size_t r = 0; r + 1 < offsets.size(); ++r) {
    try {
      master.receive(exec, bytes.subspan(offsets[r], offsets[r + 1] - offsets[r]));
    } catch (const error& e) {
      fail(e.code(),
           "the message of rank " + std::to_string(r) + what + ": " + std::string(e.reason()));
    }
  }
  return master.broadcast(exec);
}

/// The elementwise max over ranks of the scales `local()` returns (TernGrad's scaler sharing).
/// First every rank learns whether every rank has its scales, so nobody waits for a rank that
/// threw: that rank throws its own error, the others peer_failed.
template <class Local>
std::vector<float> max_scales_over_ranks(mpi_communicator& comm, std::uint64_t step,
                                         Local&& local) {
  std::vector<float> v;
  std::optional<error> failure;
  try {
    v = local();
  } catch (const error& e) {
    failure = e;
  }
  float failed = failure ? 1.0f : 0.0f;
  comm.allreduce_max(std::span<float>(&failed, 1));
  if (failure) {
    throw *failure;
  }
  require(failed == 0.0f, errc::peer_failed,
          "another rank failed to compute its scales for step " + std::to_string(step));
  comm.allreduce_max(std::span<float>(v));
  return v;
}

/// The per-span tables of worker `w`'s message `msg` (with its compression error) in `st.up` and
/// of the broadcast `bcast` in `st.down`.
template <class Worker>
void count_own_traffic(step_stats& st, Worker& w, std::span<const std::byte> msg,
                       std::span<const std::byte> bcast) {
  const auto& up_plan = w.worker_codec().spans();
  const auto& down_plan = w.master_codec().spans();
  st.up = traffic_table(up_plan, w.layout());
  st.down = traffic_table(down_plan, w.layout());
  std::vector<double> err(up_plan.size()), norm(up_plan.size());
  count_message(msg, up_plan, w.memory().last_input(), w.memory().last_sent(), st.up, err, norm);
  finish_errors(st.up, err, norm);
  std::vector<double> derr(down_plan.size()), dnorm(down_plan.size());
  count_message(bcast, down_plan, {}, {}, st.down, derr, dnorm);
}

} // namespace gradcomp::detail
