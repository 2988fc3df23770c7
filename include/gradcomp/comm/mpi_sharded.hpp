// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../error.hpp"
#include "../framework/master.hpp"
#include "../framework/step_stats.hpp"
#include "../framework/worker.hpp"
#include "../layout/model_layout.hpp"
#include "exchange_envelope.hpp"
#include "in_process_sharded.hpp"
#include "mpi.hpp"
#include "mpi_rounds.hpp"
#include "shard_plan.hpp"

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
/// The sharded exchange of mpi_cluster (topology::sharded): Algorithm 1 with every rank the
/// master of one shard of the model (comm/shard_plan.hpp). Per step, on every rank:
///
///   1. Q_W on each shard of its gradient (one worker, with its residual, per shard);
///   2. envelopes to every rank, checked (as the other modes);
///   3. each rank tells rank s the size of its message for shard s (8 bytes), and every rank
///      tells every other whether the sizes it was told are within Q_W's bound for its shard, so
///      that a lying rank is named on every rank before any message moves;
///   4. all-to-all: rank s receives the n messages of shard s;
///   5. rank s aggregates them in rank order and applies Q_M to the result (with its residual
///      under master feedback); a second round of envelopes carries its size, or its failure;
///   6. allgather of the n shard broadcasts; each rank decodes them into its update.
///
/// Bytes per rank: (n-1)/n of its Q_W messages out and about as much in, n-1 shard broadcasts in
/// and its own out n-1 times, about 2 (n-1)/n m with m a whole-model message; elements decoded
/// per rank: d (its shard, n times d/n) plus d (the broadcasts), whatever n. The update equals
/// in_process_sharded_cluster's bit for bit. A step that fails on every rank returns what each
/// rank had compressed (and what its master had compressed) to the residuals (unsend).

namespace gradcomp::detail {

template <class WorkerScheme, class MasterScheme>
class mpi_sharded_exchange {
  using worker_type = worker<WorkerScheme, MasterScheme>;
  using master_type = master<WorkerScheme, MasterScheme>;

public:
  struct settings {
    std::uint64_t seed = 0;
    aggregation rule = aggregation::mean;
    bool worker_feedback = false;
    bool master_feedback = false;
    bool share_scales = false;
    std::function<void(std::span<std::byte>)> on_send; ///< sees all shard messages, in order
  };

  mpi_sharded_exchange(const WorkerScheme& q_w, const MasterScheme& q_m, const model_layout& layout,
                       mpi_communicator& comm, settings set)
      : comm_(comm), set_(std::move(set)), shards_(shard_model(layout, comm.size(), set_.seed)),
        total_(layout.total_size()) {
    const auto me = static_cast<std::uint32_t>(comm.rank());
    workers_.reserve(shards_.size());
    for (const model_shard& sh : shards_) {
      workers_.emplace_back(q_w, q_m, sh.layout, me,
                            typename worker_type::options{sh.seed, set_.worker_feedback});
    }
    const model_shard& own = shards_[me];
    master_.emplace(q_w, q_m, own.layout, comm.size(),
                    typename master_type::options{own.seed, set_.rule, set_.master_feedback});
  }

  [[nodiscard]] const std::vector<model_shard>& shards() const noexcept { return shards_; }
  [[nodiscard]] worker_type& shard_worker(std::size_t s) { return workers_.at(s); }
  /// The master of this rank's shard.
  [[nodiscard]] master_type& shard_master() { return *master_; }
  /// Digests of Q_W's and Q_M's plans over all shards, for the envelopes.
  [[nodiscard]] std::uint64_t worker_plan() {
    return plan_digest([](worker_type & w) -> auto& { return w.worker_codec(); });
  }
  [[nodiscard]] std::uint64_t master_plan() {
    return plan_digest([](worker_type & w) -> auto& { return w.master_codec(); });
  }

  /// One step (the file's steps 1-6); `env` is this rank's envelope for the step. Errors as
  /// mpi_cluster::step.
  template <class Exec>
  step_stats step(const Exec& exec, exchange_envelope env, std::span<const float> grad,
                  std::uint64_t step, float scale, std::span<float> update) {
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    const std::vector<float> shared = shared_scales(exec, grad, update, step, scale);
    std::optional<error> failure;
    compressed_ = 0;
    aggregated_ = false;
    try { // told to the others in this rank's envelope, then thrown
      require_sizes(grad, update);
      compress_all(exec, grad, step, scale, shared);
      env.payload_bytes = out_.size();
    } catch (const error& e) {
      env.set_failure(e);
      failure = e;
    }
    const auto t1 = clock::now();
    step_stats st;
    try {
      st = exchange(exec, env, failure);
    } catch (const error&) { // no rank applies this step: what was sent returns to the residuals
      for (std::size_t s = 0; s < compressed_; ++s) {
        workers_[s].unsend(exec);
      }
      if (aggregated_) {
        master_->unsend(exec);
      }
      throw;
    }
    const auto t2 = clock::now();
    for (std::size_t s = 0; s < shards_.size(); ++s) {
      workers_[s].decompress(exec, piece(down_, down_offsets_, s), step,
                             update.subspan(shards_[s].begin, shards_[s].size));
    }
    const auto t3 = clock::now();
    count(st);
    detail::record_times(st, t0, t1, t2, t3);
    st.rank_elements_decoded = comm_.size() * shards_[comm_.rank()].size + total_;
    return st;
  }

private:
  /// A gradient or update of another size than the model: size_mismatch (before any shard is
  /// cut from them, inside the rounds that tell the other ranks).
  void require_sizes(std::span<const float> grad, std::span<float> update) const {
    detail::require(grad.size() == total_ && update.size() == total_, errc::size_mismatch,
                    "gradient of " + std::to_string(grad.size()) + " and update of " +
                        std::to_string(update.size()) + " elements for a model of " +
                        std::to_string(total_));
  }

  template <class Codec>
  std::uint64_t plan_digest(Codec&& codec_of) {
    digest_builder d;
    for (worker_type& w : workers_) {
      d.add(codec_of(w).plan_digest());
    }
    return d.value();
  }

  static std::span<const std::byte> piece(const std::vector<std::byte>& buf,
                                          const std::vector<std::size_t>& offsets, std::size_t i) {
    return {buf.data() + offsets[i], offsets[i + 1] - offsets[i]};
  }

  /// Every shard's Q_W message, back to back in out_ (offsets in out_offsets_).
  template <class Exec>
  void compress_all(const Exec& exec, std::span<const float> grad, std::uint64_t step, float scale,
                    const std::vector<float>& shared) {
    out_.clear();
    out_offsets_.assign(1, 0);
    std::size_t scale_at = 0;
    for (std::size_t s = 0; s < shards_.size(); ++s) {
      const std::size_t count = shared.empty() ? 0 : scale_counts_[s];
      const auto msg =
          workers_[s].compress(exec, grad.subspan(shards_[s].begin, shards_[s].size), step, scale,
                               std::span<const float>(shared).subspan(scale_at, count));
      scale_at += count;
      ++compressed_;
      out_.insert(out_.end(), msg.begin(), msg.end());
      out_offsets_.push_back(out_.size());
    }
    if (set_.on_send) {
      set_.on_send(std::span<std::byte>(out_));
    }
  }

  /// Steps 2-6 of the file comment, up to the gathered broadcasts in down_.
  template <class Exec>
  step_stats exchange(const Exec& exec, const exchange_envelope& env,
                      const std::optional<error>& failure) {
    const std::size_t n = comm_.size(), me = comm_.rank();
    const std::vector<exchange_envelope> envs = comm_.exchange_envelopes(env);
    if (failure) {
      throw *failure;
    }
    step_stats st;
    for (std::size_t r = 0; r < n; ++r) {
      if (r != me) {
        check_peer_envelope(env, envs[r], r, max_up());
      }
      st.bytes_up += envs[r].payload_bytes;
    }
    const std::vector<std::size_t> in_sizes = announced_sizes(env.step);
    in_offsets_ = comm_.alltoallv(std::span<const std::byte>(out_), out_offsets_, in_sizes, in_);
    exchange_envelope verdict = env;
    std::optional<error> own;
    try {
      const auto bcast = aggregate(exec, env.step);
      aggregated_ = true;
      own_bcast_.assign(bcast.begin(), bcast.end());
      verdict.payload_bytes = own_bcast_.size();
    } catch (const error& e) {
      verdict.set_failure(e);
      own = e;
    }
    const std::vector<exchange_envelope> verdicts = comm_.exchange_envelopes(verdict);
    if (own) {
      throw *own;
    }
    std::vector<std::size_t> down_sizes(n);
    for (std::size_t r = 0; r < n; ++r) {
      if (r != me) {
        check_peer_envelope(verdict, verdicts[r], r, max_down());
      }
      down_sizes[r] = verdicts[r].payload_bytes;
      detail::require(down_sizes[r] <= workers_[r].master_codec().max_encoded_bytes(),
                      errc::corrupt_payload,
                      "rank " + std::to_string(r) + " announces a broadcast of " +
                          std::to_string(down_sizes[r]) +
                          " bytes, more than Q_M's bound for its "
                          "shard");
      st.bytes_down += down_sizes[r] * n;
    }
    down_offsets_ = comm_.allgatherv(std::span<const std::byte>(own_bcast_), down_sizes, down_);
    return st;
  }

  /// Step 3: the sizes of the messages this rank will receive, checked against Q_W's bound for
  /// its shard, and every rank's verdict on the sizes it was told (0, or 1 + the liar's rank).
  std::vector<std::size_t> announced_sizes(std::uint64_t step) {
    const std::size_t n = comm_.size(), me = comm_.rank();
    std::vector<std::uint64_t> mine(n);
    for (std::size_t s = 0; s < n; ++s) {
      mine[s] = out_offsets_[s + 1] - out_offsets_[s];
    }
    const std::vector<std::uint64_t> told = comm_.alltoall_words(mine);
    const std::size_t bound = workers_[me].worker_codec().max_encoded_bytes();
    std::uint64_t liar = 0;
    for (std::size_t r = 0; r < n && liar == 0; ++r) {
      liar = told[r] > bound ? 1 + r : 0;
    }
    const std::vector<std::uint64_t> verdicts =
        comm_.alltoall_words(std::vector<std::uint64_t>(n, liar));
    for (std::size_t r = 0; r < n; ++r) {
      detail::require(verdicts[r] == 0, errc::corrupt_payload, [&] {
        return "rank " + std::to_string(verdicts[r] - 1) + " announced to rank " +
               std::to_string(r) + " a message for its shard above Q_W's bound, at step " +
               std::to_string(step);
      });
    }
    return {told.begin(), told.end()};
  }

  /// Step 5: this rank's shard, the n contributions in rank order, then Q_M.
  template <class Exec>
  std::span<const std::byte> aggregate(const Exec& exec, std::uint64_t step) {
    return aggregate_in_rank_order(exec, *master_, step, std::span<const std::byte>(in_),
                                   in_offsets_, " for shard " + std::to_string(comm_.rank()));
  }

  /// With share_scales: every shard's scales, the elementwise max over ranks (one collective
  /// for all shards).
  template <class Exec>
  std::vector<float> shared_scales(const Exec& exec, std::span<const float> grad,
                                   std::span<float> update, std::uint64_t step, float scale) {
    if (!set_.share_scales) {
      return {};
    }
    scale_counts_.assign(shards_.size(), 0);
    return max_scales_over_ranks(comm_, step, [&] {
      require_sizes(grad, update);
      std::vector<float> v;
      for (std::size_t s = 0; s < shards_.size(); ++s) {
        const std::vector<float> local = workers_[s].local_scales(
            exec, grad.subspan(shards_[s].begin, shards_[s].size), step, scale);
        scale_counts_[s] = local.size();
        v.insert(v.end(), local.begin(), local.end());
      }
      return v;
    });
  }

  /// Bounds for the envelopes: all of a rank's Q_W messages together; one shard's broadcast.
  std::size_t max_up() {
    std::size_t m = 0;
    for (worker_type& w : workers_) {
      m += w.worker_codec().max_encoded_bytes();
    }
    return m;
  }
  std::size_t max_down() {
    std::size_t m = 0;
    for (worker_type& w : workers_) {
      m = std::max(m, w.master_codec().max_encoded_bytes());
    }
    return m;
  }

  /// Per-span tables: this rank's message for each shard (and its error), each shard's
  /// broadcast.
  void count(step_stats& st) {
    for (std::size_t s = 0; s < shards_.size(); ++s) {
      worker_type& w = workers_[s];
      step_stats one;
      count_own_traffic(one, w, piece(out_, out_offsets_, s), piece(down_, down_offsets_, s));
      append_shard_table(st.up, one.up, w.worker_codec().spans(), s);
      append_shard_table(st.down, one.down, w.master_codec().spans(), s);
    }
  }

  mpi_communicator& comm_;
  settings set_;
  std::vector<model_shard> shards_;
  std::size_t total_;
  std::vector<worker_type> workers_;
  std::optional<master_type> master_;
  std::vector<std::size_t> scale_counts_;
  std::size_t compressed_ = 0; ///< shards compressed in this step (their residuals changed)
  bool aggregated_ = false;    ///< this rank's master ran Q_M in this step
  std::vector<std::byte> out_, in_, own_bcast_, down_;
  std::vector<std::size_t> out_offsets_, in_offsets_, down_offsets_;
};

} // namespace gradcomp::detail
