// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../error.hpp"
#include "../framework/step_stats.hpp"
#include "../lowrank/powersgd.hpp"
#include "exchange_envelope.hpp"
#include "mpi.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

/// @file
/// PowerSGD (lowrank/powersgd.hpp) with one worker per MPI rank. Each of a step's two rounds is
/// an all-reduce built from the communicator's checked pieces: every rank's envelope reaches every
/// rank first (a rank that failed, or runs another layout, plan, seed or step, is named on every
/// rank), then every message reaches every rank (allgatherv), and each rank sums them in rank
/// order. Every rank therefore holds the same sum bytes, and the result equals the in-process
/// exchange of the same workers bit for bit. A message that fails its checks is named by its rank
/// on every rank. Bytes per rank and round: (n - 1) times the factor message, which is small (a
/// few KB per layer); the residual and warm start stay on each rank.

namespace gradcomp {

class mpi_powersgd {
public:
  mpi_powersgd(MPI_Comm comm, const model_layout& layout, powersgd_options opt,
               mpi_communicator::options comm_options = {})
      : comm_(comm, comm_options), layout_digest_(layout_digest(layout)),
        worker_(layout, opt, static_cast<std::uint32_t>(comm_.rank())) {}

  [[nodiscard]] powersgd& worker() noexcept { return worker_; }
  [[nodiscard]] std::size_t rank() const noexcept { return comm_.rank(); }
  [[nodiscard]] std::size_t size() const noexcept { return comm_.size(); }

  /// One step: every rank passes its gradient and receives the mean estimate in `out` (the same
  /// bytes on every rank). A failure on any rank throws on every rank (peer_failed elsewhere) and
  /// leaves every residual as it was.
  step_stats step(std::span<const float> grad, std::span<float> out) {
    step_stats st;
    try {
      round(lowrank_round::p, st, [&](std::vector<std::byte>& m) { worker_.encode_p(grad, m); });
      round(lowrank_round::q, st, [&](std::vector<std::byte>& m) { worker_.encode_q(sum_, m); });
      worker_.decode(sum_, out);
    } catch (...) {
      worker_.abort_step();
      throw;
    }
    st.bytes_down = st.bytes_up; // each rank receives every other rank's messages
    return st;
  }

private:
  /// Encodes this rank's message, exchanges envelopes and messages, and sums them into sum_.
  template <class Encode>
  void round(lowrank_round r, step_stats& st, Encode&& encode) {
    exchange_envelope env;
    env.compressor = compressor_id::powersgd;
    env.encoding = detail::lowrank_encoding(r);
    env.granularity = worker_.plan().granularity();
    env.rank = static_cast<std::uint32_t>(rank());
    env.layout_digest = layout_digest_;
    env.worker_plan = worker_.plan().digest();
    env.seed = worker_.options().seed;
    env.step = worker_.step();
    std::optional<error> local_failure;
    try {
      encode(msg_);
      env.payload_bytes = msg_.size();
    } catch (const error& e) {
      env.set_failure(e);
      local_failure = e;
    }
    const std::vector<exchange_envelope> envs = comm_.exchange_envelopes(env);
    if (local_failure) {
      throw *local_failure;
    }
    const std::size_t bound = worker_.message_bytes(r);
    std::vector<std::size_t> sizes(size());
    for (std::size_t p = 0; p < size(); ++p) {
      if (p != rank()) {
        check_peer_envelope(env, envs[p], p, bound);
      }
      sizes[p] = envs[p].payload_bytes;
      st.bytes_up += sizes[p];
    }
    const auto offsets = comm_.allgatherv(msg_, sizes, gathered_);
    std::vector<std::span<const std::byte>> views;
    for (std::size_t p = 0; p < size(); ++p) {
      views.push_back(std::span<const std::byte>(gathered_).subspan(offsets[p], sizes[p]));
    }
    try {
      worker_.sum(r, views, sum_);
    } catch (const error&) { // every rank sums the same messages: the same error everywhere
      for (std::size_t p = 0; p < size(); ++p) {
        std::vector<std::byte> one;
        try {
          worker_.sum(r, std::span<const std::span<const std::byte>>(&views[p], 1), one);
        } catch (const error& bad) {
          detail::fail(bad.code(), "the " + std::string(detail::lowrank_round_name(r)) +
                                       " message of rank " + std::to_string(p) + ": " +
                                       std::string(bad.reason()));
        }
      }
      throw;
    }
  }

  mpi_communicator comm_;
  std::uint64_t layout_digest_ = 0;
  powersgd worker_;
  std::vector<std::byte> msg_;
  std::vector<std::byte> gathered_;
  std::vector<std::byte> sum_;
};

} // namespace gradcomp
