// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../error.hpp"
#include "../framework/master.hpp"
#include "../framework/step_stats.hpp"
#include "../framework/worker.hpp"
#include "../layout/model_layout.hpp"
#include "exchange_envelope.hpp"
#include "mpi.hpp"
#include "mpi_rounds.hpp"
#include "mpi_sharded.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

/// @file
/// Algorithm 1 over MPI, one worker per rank, with the same roles as the in-process simulation
/// (comm/in_process.hpp) and the same result bit for bit: ranks play the simulation's workers in
/// rank order, and the master aggregates in rank order.
///
/// - all_reduce: every rank receives every Q_W message (size exchange, then every message to
///   every rank), aggregates and applies Q_M itself. Q_M's randomness depends on (seed, step) only,
///   so every rank computes the same broadcast message without sending it; this is all-reduce with
///   the compressed messages as the unit of exchange (no summation of codes on the wire).
/// - parameter_server: messages are gathered at the root, which aggregates, applies Q_M and
///   broadcasts the Q_M message.
/// - sharded: every rank is the master of one shard of the model (comm/shard_plan.hpp): Q_W per
///   shard, an all-to-all, Q_M per shard on its rank, an allgather of the shard broadcasts
///   (comm/mpi_sharded.hpp). Bytes and decode work per rank do not grow with the rank count; the
///   result is in_process_sharded_cluster's (comm/in_process_sharded.hpp) bit for bit, since the
///   sharding changes what is compressed: an entire-model scheme compresses each shard whole.
/// - summable_all_reduce: for codes that add (TernGrad, QSGD, sign, scaled sign;
///   framework/level_sums.hpp), every rank's integer levels in fields wide enough for n ranks,
///   summed by MPI's own all-reduce (MPI_SUM on 64-bit words: exact, any order); every rank runs
///   the master on the sums and applies Q_M itself, as in all_reduce mode. Scales are shared
///   (one max over ranks per step) whether or not share_scales is set. The result is that of
///   in_process_cluster with share_scales and sum_levels, bit for bit.
///
/// Before any message moves, ranks exchange envelopes (comm/exchange_envelope.hpp) and check
/// them: a rank with another layout, scheme, version, seed or step, or one whose compression
/// failed, makes the step fail on every rank with a named error, and leaves the communicator
/// usable. A message that fails to decode (corrupted on the way) fails on every rank that decodes
/// it; in parameter-server mode the root reports it to the others in its verdict. A rank that
/// hangs is named by every rank: by each in all-reduce mode, where everyone waits for everyone;
/// in parameter-server mode by the root, which times out waiting for it and reports that in its
/// verdict (mpi_communicator::report_failure). When a step fails on every rank after a rank's
/// compression succeeded, its message returns to its residual (worker::unsend), so error feedback
/// loses nothing; a rank whose own compression failed keeps the residual it had.
///
/// Statistics per step: bytes_up is all ranks' Q_W messages, bytes_down the broadcast times the
/// number of ranks, as in the simulation; the per-span tables count this rank's own message (and
/// its compression error) and the broadcast; rank_bytes_sent / rank_bytes_received are this
/// rank's traffic as the communicator counted it, rank_elements_decoded its decode work.

namespace gradcomp {

enum class topology : std::uint8_t { all_reduce, parameter_server, sharded, summable_all_reduce };

template <class WorkerScheme, class MasterScheme>
class mpi_cluster {
public:
  using worker_type = worker<WorkerScheme, MasterScheme>;
  using master_type = master<WorkerScheme, MasterScheme>;
  using sharded_type = detail::mpi_sharded_exchange<WorkerScheme, MasterScheme>;

  struct options {
    std::uint64_t seed = 0;
    aggregation rule = aggregation::mean;
    bool worker_feedback = false;
    bool master_feedback = false;
    bool share_scales = false; ///< TernGrad scaler sharing: one MPI_Iallreduce(max) per step
    topology mode = topology::all_reduce;
    std::size_t root = 0; ///< the parameter server's rank
    /// Sees, and may alter, this rank's Q_W message just before it is sent: for tracing and for
    /// fault injection in tests (a corrupted message must be rejected by its receivers).
    std::function<void(std::span<std::byte>)> on_send;
  };

  mpi_cluster(WorkerScheme q_w, MasterScheme q_m, const model_layout& layout,
              mpi_communicator& comm, options opt)
      : comm_(comm), opt_(opt), total_(layout.total_size()) {
    detail::require(opt.root < comm.size(), errc::invalid_parameter,
                    "root rank " + std::to_string(opt.root) + " of " + std::to_string(comm.size()));
    const auto me = static_cast<std::uint32_t>(comm.rank());
    if (opt.mode == topology::sharded) {
      sharded_.emplace(q_w, q_m, layout, comm,
                       typename sharded_type::settings{opt.seed, opt.rule, opt.worker_feedback,
                                                       opt.master_feedback, opt.share_scales,
                                                       opt.on_send});
      mine_.worker_plan = sharded_->worker_plan();
      mine_.master_plan = sharded_->master_plan();
    } else {
      worker_.emplace(q_w, q_m, layout, me,
                      typename worker_type::options{opt.seed, opt.worker_feedback});
      mine_.worker_plan = worker_->worker_codec().plan_digest();
      mine_.master_plan = worker_->master_codec().plan_digest();
    }
    const bool summable = opt.mode == topology::summable_all_reduce;
    if (opt.mode == topology::all_reduce || summable ||
        (opt.mode == topology::parameter_server && comm.rank() == opt.root)) {
      master_.emplace(
          q_w, q_m, layout, comm.size(),
          typename master_type::options{opt.seed, opt.rule, opt.master_feedback, summable});
    }
    share_scales_ = opt.share_scales || (summable && master_->sums_of_levels()->scaled());
    const scheme_ids ids =
        sharded_ ? sharded_->shard_worker(0).worker_codec().ids() : worker_->worker_codec().ids();
    mine_.compressor = ids.compressor;
    mine_.encoding = ids.encoding;
    mine_.granularity = ids.granularity;
    mine_.rank = me;
    mine_.layout_digest = layout_digest(layout);
    mine_.seed = opt.seed;
  }

  [[nodiscard]] std::size_t rank() const noexcept { return comm_.rank(); }
  [[nodiscard]] std::size_t size() const noexcept { return comm_.size(); }
  /// This rank's worker (all_reduce and parameter_server modes).
  [[nodiscard]] worker_type& local_worker() {
    detail::require(worker_.has_value(), errc::invalid_parameter,
                    "a sharded cluster has one worker per shard: use shard_worker(s)");
    return *worker_;
  }
  /// This rank's master: every rank's in all_reduce mode, the root's in parameter_server mode,
  /// the one of its shard in sharded mode. Error invalid_parameter on a rank without one.
  [[nodiscard]] master_type& coordinator() {
    master_type* m = sharded_ ? &sharded_->shard_master() : (master_ ? &*master_ : nullptr);
    detail::require(m != nullptr, errc::invalid_parameter,
                    "rank " + std::to_string(rank()) + " is not the parameter server");
    return *m;
  }
  /// This rank's worker for shard s (sharded mode).
  [[nodiscard]] worker_type& shard_worker(std::size_t s) {
    detail::require(sharded_.has_value(), errc::invalid_parameter,
                    "only a sharded cluster has shard workers");
    return sharded_->shard_worker(s);
  }

  /// One step of Algorithm 1: this rank's `grad` (times `scale`, plus its residual) goes up, the
  /// decoded broadcast comes back into `update`. Collective: every rank calls it with the same
  /// step. Errors: every error of the roles, on every rank (the failing rank throws its own,
  /// the others peer_failed or the mismatch they see), timeout and transport_error.
  template <class Exec>
  step_stats step(const Exec& exec, std::span<const float> grad, std::uint64_t step, float scale,
                  std::span<float> update) {
    exchange_envelope env = mine_;
    env.step = step;
    const mpi_communicator::traffic_counters before = comm_.traffic();
    step_stats st = sharded_ ? sharded_->step(exec, env, grad, step, scale, update)
                             : whole_model_step(exec, env, grad, step, scale, update);
    st.rank_bytes_sent = comm_.traffic().sent - before.sent;
    st.rank_bytes_received = comm_.traffic().received - before.received;
    return st;
  }

private:
  /// A step of the all_reduce and parameter_server modes.
  template <class Exec>
  step_stats whole_model_step(const Exec& exec, exchange_envelope env, std::span<const float> grad,
                              std::uint64_t step, float scale, std::span<float> update) {
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    std::optional<error> local_failure;
    std::span<const std::byte> msg;
    // a collective of its own: fails on every rank when one rank's scales fail
    const std::vector<float> shared = shared_scales(exec, grad, step, scale);
    try {
      msg = worker_->compress(exec, grad, step, scale, shared);
      if (opt_.on_send && opt_.mode != topology::summable_all_reduce) {
        sent_.assign(msg.begin(), msg.end());
        opt_.on_send(std::span<std::byte>(sent_));
        msg = sent_;
      }
      env.payload_bytes = msg.size();
    } catch (const error& e) { // told to the others in this rank's envelope, then thrown
      env.set_failure(e);
      local_failure = e;
    }
    const auto t1 = clock::now();
    step_stats st;
    try {
      st = opt_.mode == topology::all_reduce ? all_reduce_step(exec, env, local_failure, msg)
           : opt_.mode == topology::summable_all_reduce
               ? summable_step(exec, env, local_failure, msg)
               : parameter_server_step(exec, env, local_failure, msg);
    } catch (const error&) { // no rank applies this step: what this rank sent is not lost
      if (!local_failure) {
        worker_->unsend(exec);
      }
      throw;
    }
    const auto t2 = clock::now();
    worker_->decompress(exec, std::span<const std::byte>(down_), step, update);
    const auto t3 = clock::now();
    detail::count_own_traffic(st, *worker_, msg, std::span<const std::byte>(down_));
    detail::record_times(st, t0, t1, t2, t3);
    const bool summed = opt_.mode == topology::summable_all_reduce; // the sums, the broadcast
    st.rank_elements_decoded = (summed ? 2 : (master_ ? size() + 1 : 1)) * total_;
    return st;
  }

  /// Every rank's envelope on every rank, checked; then every message on every rank; each rank
  /// runs the master on them in rank order.
  template <class Exec>
  step_stats all_reduce_step(const Exec& exec, const exchange_envelope& env,
                             const std::optional<error>& local_failure,
                             std::span<const std::byte> msg) {
    step_stats st = exchange_and_check_envelopes(env, local_failure);
    const auto offsets = comm_.allgatherv(msg, sizes_, gathered_);
    const auto bcast = aggregate(exec, env.step, offsets);
    down_.assign(bcast.begin(), bcast.end());
    st.bytes_down = down_.size() * size();
    return st;
  }

  /// Envelopes as in all_reduce mode, then this rank's levels summed with every other rank's by
  /// MPI's all-reduce; each rank runs the master on the sums (checked: a field out of range is
  /// corrupt_payload on every rank, since every rank holds the same sums).
  template <class Exec>
  step_stats summable_step(const Exec& exec, const exchange_envelope& env,
                           const std::optional<error>& local_failure,
                           std::span<const std::byte> msg) {
    step_stats st = exchange_and_check_envelopes(env, local_failure);
    const level_sums& sums = *master_->sums_of_levels();
    level_words_.assign(sums.words(), 0);
    level_scales_.clear();
    sums.add(msg, level_words_, level_scales_);
    if (opt_.on_send) {
      opt_.on_send(std::as_writable_bytes(std::span<std::uint64_t>(level_words_)));
    }
    comm_.allreduce_sum(level_words_);
    master_->begin(env.step);
    master_->receive_sums(level_words_, level_scales_);
    const auto bcast = master_->broadcast(exec);
    down_.assign(bcast.begin(), bcast.end());
    st.bytes_down = down_.size() * size();
    return st;
  }

  /// Every rank's envelope on every rank, checked (a rank that failed locally throws its own
  /// error); sets sizes_ and the step's bytes_up (the Q_W messages of all ranks).
  step_stats exchange_and_check_envelopes(const exchange_envelope& env,
                                          const std::optional<error>& local_failure) {
    const std::vector<exchange_envelope> envs = comm_.exchange_envelopes(env);
    if (local_failure) {
      throw *local_failure;
    }
    step_stats st;
    sizes_.assign(size(), 0);
    for (std::size_t r = 0; r < size(); ++r) {
      if (r != rank()) {
        check_peer_envelope(env, envs[r], r, max_up());
      }
      sizes_[r] = envs[r].payload_bytes;
      st.bytes_up += sizes_[r];
    }
    return st;
  }

  /// Envelopes to the root, which checks them and broadcasts its verdict; messages to the root,
  /// which aggregates and broadcasts a second verdict (the Q_M message's size or the failure),
  /// then the Q_M message.
  template <class Exec>
  step_stats parameter_server_step(const Exec& exec, const exchange_envelope& env,
                                   const std::optional<error>& local_failure,
                                   std::span<const std::byte> msg) {
    const std::size_t root = opt_.root;
    const bool at_root = rank() == root;
    const std::vector<exchange_envelope> envs =
        reported_at_root(env, [&] { return comm_.gather_envelopes(env, root); });
    exchange_envelope verdict = env;
    std::optional<error> own_failure = local_failure;
    if (at_root) {
      verdict = root_verdict(env, envs, own_failure);
    }
    verdict = comm_.broadcast_envelope(verdict, root);
    throw_if_failed(verdict, own_failure, env.step);
    step_stats st;
    st.bytes_up = verdict.payload_bytes;
    const auto offsets =
        reported_at_root(env, [&] { return comm_.gatherv(msg, sizes_, root, gathered_); });
    exchange_envelope result = verdict;
    std::optional<error> root_failure;
    if (at_root) {
      try {
        const auto bcast = aggregate(exec, env.step, offsets);
        down_.assign(bcast.begin(), bcast.end());
        result.payload_bytes = down_.size();
      } catch (const error& e) {
        result.set_failure(e);
        root_failure = e;
      }
    }
    result = comm_.broadcast_envelope(result, root);
    throw_if_failed(result, root_failure, env.step);
    if (!at_root) {
      detail::require(result.payload_bytes <= max_down(), errc::corrupt_payload,
                      "the root announces a broadcast of " + std::to_string(result.payload_bytes) +
                          " bytes, more than Q_M's bound of " + std::to_string(max_down()));
      down_.resize(result.payload_bytes);
    }
    comm_.broadcast(std::span<std::byte>(down_), root);
    st.bytes_down = down_.size() * size();
    return st;
  }

  /// The root's verdict on the gathered envelopes: ok with the total upward bytes, or the first
  /// failure (its own, then the ranks' in rank order, which becomes `failure`). Sets sizes_.
  exchange_envelope root_verdict(const exchange_envelope& env,
                                 const std::vector<exchange_envelope>& envs,
                                 std::optional<error>& failure) {
    exchange_envelope verdict = env;
    if (failure) {
      verdict.set_failure(*failure);
      return verdict;
    }
    sizes_.assign(size(), 0);
    std::uint64_t total = 0;
    try {
      for (std::size_t r = 0; r < size(); ++r) {
        if (r != rank()) {
          check_peer_envelope(env, envs[r], r, max_up());
        }
        sizes_[r] = envs[r].payload_bytes;
        total += sizes_[r];
      }
    } catch (const error& e) {
      verdict.set_failure(e);
      failure = e;
      return verdict;
    }
    verdict.payload_bytes = total;
    return verdict;
  }

  /// Runs one of the root's exchanges; when it fails there (a rank that hung makes it time out,
  /// naming that rank), the root tells the other ranks, who wait for its verdict, before it
  /// throws.
  template <class Exchange>
  auto reported_at_root(const exchange_envelope& env, Exchange&& exchange) {
    try {
      return exchange();
    } catch (const error& e) {
      if (rank() == opt_.root) {
        exchange_envelope verdict = env;
        verdict.set_failure(e);
        comm_.report_failure(verdict);
      }
      throw;
    }
  }

  /// After a verdict: this rank's own failure if it had one, else the root's: timeout when the
  /// root timed out waiting for a rank (its text names it), peer_failed otherwise.
  void throw_if_failed(const exchange_envelope& verdict, const std::optional<error>& own,
                       std::uint64_t step) const {
    if (verdict.ok()) {
      return;
    }
    if (own) {
      throw *own;
    }
    const bool timed_out = verdict.status == 1 + static_cast<int>(errc::timeout);
    detail::fail(timed_out ? errc::timeout : errc::peer_failed,
                 "root rank " + std::to_string(opt_.root) + " stopped step " +
                     std::to_string(step) + ": " + verdict.text);
  }

  /// The master's round on the gathered messages, in rank order.
  template <class Exec>
  std::span<const std::byte> aggregate(const Exec& exec, std::uint64_t step,
                                       const std::vector<std::size_t>& offsets) {
    return detail::aggregate_in_rank_order(exec, *master_, step,
                                           std::span<const std::byte>(gathered_), offsets);
  }

  template <class Exec>
  std::vector<float> shared_scales(const Exec& exec, std::span<const float> grad,
                                   std::uint64_t step, float scale) {
    if (!share_scales_) {
      return {};
    }
    return detail::max_scales_over_ranks(
        comm_, step, [&] { return worker_->local_scales(exec, grad, step, scale); });
  }

  std::size_t max_up() { return worker_->worker_codec().template max_encoded_bytes<float>(); }
  std::size_t max_down() { return worker_->master_codec().template max_encoded_bytes<float>(); }

  mpi_communicator& comm_;
  options opt_;
  std::size_t total_;
  std::optional<worker_type> worker_;
  std::optional<master_type> master_;
  std::optional<sharded_type> sharded_;
  exchange_envelope mine_;
  std::vector<std::size_t> sizes_;
  std::vector<std::byte> gathered_;
  std::vector<std::byte> sent_; ///< the message as on_send left it
  std::vector<std::byte> down_;
  std::vector<std::uint64_t> level_words_; ///< this rank's levels, then their sum (summable mode)
  std::vector<float> level_scales_;        ///< the scales this rank's levels are on
  bool share_scales_ = false;
};

} // namespace gradcomp
