// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../error.hpp"
#include "../framework/step_stats.hpp"
#include "../layout/model_layout.hpp"
#include "in_process.hpp"
#include "shard_plan.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

/// @file
/// The sharded exchange (topology::sharded of comm/mpi_cluster.hpp) simulated in one process:
/// the model is cut into one shard per worker (comm/shard_plan.hpp), and each shard runs
/// Algorithm 1 on its own: every worker compresses its part of the shard with Q_W, the shard's
/// master (rank s in a real cluster) aggregates the n contributions and compresses the result
/// with Q_M, with its own residual when master feedback is on. That is n in_process_cluster
/// objects, one per shard, with the shard's layout and seed; an MPI job in sharded mode gives the
/// same update bit for bit.
///
/// Statistics: bytes and times summed over shards; the per-span tables are the shards' tables
/// back to back (a flat or bucket span named "shard s span j").

namespace gradcomp {

namespace detail {

/// Appends shard `shard`'s per-span table to `all`, naming its spans that are not layers.
inline void append_shard_table(std::vector<span_traffic>& all,
                               const std::vector<span_traffic>& table,
                               const std::vector<span_desc>& plan, std::size_t shard) {
  for (std::size_t j = 0; j < table.size(); ++j) {
    all.push_back(table[j]);
    if (plan[j].layer == span_desc::no_layer) {
      all.back().name = "shard " + std::to_string(shard) + " span " + std::to_string(j);
    }
  }
}

/// Adds one shard's step statistics to the whole step's.
inline void add_shard_stats(step_stats& all, const step_stats& shard_stats,
                            const std::vector<span_desc>& up_plan,
                            const std::vector<span_desc>& down_plan, std::size_t shard) {
  append_shard_table(all.up, shard_stats.up, up_plan, shard);
  append_shard_table(all.down, shard_stats.down, down_plan, shard);
  all.bytes_up += shard_stats.bytes_up;
  all.bytes_down += shard_stats.bytes_down;
  all.seconds_compress += shard_stats.seconds_compress;
  all.seconds_aggregate += shard_stats.seconds_aggregate;
  all.seconds_decompress += shard_stats.seconds_decompress;
}

} // namespace detail

template <class WorkerScheme, class MasterScheme, class Backend = cpu_tag>
class in_process_sharded_cluster {
  using cluster_type = in_process_cluster<WorkerScheme, MasterScheme, Backend>;

public:
  using options = typename cluster_type::options;

  /// `workers` workers and as many shards of `layout`. Errors: those of shard_model and of the
  /// roles.
  in_process_sharded_cluster(const WorkerScheme& q_w, const MasterScheme& q_m,
                             const model_layout& layout, std::size_t workers, options opt)
      : shards_(shard_model(layout, workers, opt.seed)), total_(layout.total_size()) {
    clusters_.reserve(shards_.size());
    for (const model_shard& sh : shards_) {
      options o = opt;
      o.seed = sh.seed;
      clusters_.emplace_back(q_w, q_m, sh.layout, workers, o);
    }
  }

  [[nodiscard]] std::size_t size() const noexcept { return shards_.size(); }
  [[nodiscard]] const std::vector<model_shard>& shards() const noexcept { return shards_; }
  /// The in-process cluster of shard s (its workers, master and residuals).
  [[nodiscard]] cluster_type& shard_cluster(std::size_t s) { return clusters_.at(s); }

  /// One step of every shard: worker r's part of shard s is grads[r] restricted to the shard;
  /// `update` receives every shard's decoded broadcast at the shard's offset. Errors: as
  /// in_process_cluster::step, and size_mismatch for a gradient or update of the wrong size.
  template <class Exec>
  step_stats step(const Exec& exec, std::span<const std::span<const float>> grads,
                  std::uint64_t step, float scale, std::span<float> update) {
    detail::require(grads.size() == shards_.size(), errc::size_mismatch,
                    std::to_string(grads.size()) + " gradients for " +
                        std::to_string(shards_.size()) + " workers");
    detail::require(update.size() == total_, errc::size_mismatch,
                    "update of " + std::to_string(update.size()) + " elements for a model of " +
                        std::to_string(total_));
    for (std::size_t r = 0; r < grads.size(); ++r) {
      detail::require(grads[r].size() == total_, errc::size_mismatch,
                      "gradient " + std::to_string(r) + " has " + std::to_string(grads[r].size()) +
                          " elements, the model " + std::to_string(total_));
    }
    step_stats st;
    std::vector<std::span<const float>> part(grads.size());
    for (std::size_t s = 0; s < shards_.size(); ++s) {
      const model_shard& sh = shards_[s];
      for (std::size_t r = 0; r < grads.size(); ++r) {
        part[r] = grads[r].subspan(sh.begin, sh.size);
      }
      cluster_type& c = clusters_[s];
      const step_stats one = c.step(exec, std::span<const std::span<const float>>(part), step,
                                    scale, update.subspan(sh.begin, sh.size));
      detail::add_shard_stats(st, one, c.worker_at(0).worker_codec().spans(),
                              c.worker_at(0).master_codec().spans(), s);
    }
    return st;
  }

private:
  std::vector<model_shard> shards_;
  std::size_t total_;
  std::vector<cluster_type> clusters_;
};

} // namespace gradcomp
