// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../detail/backend_buffer.hpp"
#include "../error.hpp"
#include "../framework/master.hpp"
#include "../framework/step_stats.hpp"
#include "../framework/worker.hpp"
#include "../layout/model_layout.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

/// @file
/// n workers and a master in one process: Algorithm 1 end to end on one machine, for studying
/// convergence and traffic without a cluster. Messages are real wire messages; every worker
/// decodes the same broadcast bytes, so one decode yields the update of all of them.
///
/// Backend: cpu_tag (the default) or cuda_tag (<gradcomp/cuda.cuh>): workers and master keep
/// their residuals, messages and sums in device memory, gradients and the update are device
/// spans and cuda_policy is passed to step(); updates and messages equal the CPU's bit for bit.
/// The statistics are computed on the host from copies of the messages (and, with measure_error,
/// of the compressed inputs and their decodes); with share_scales, the workers' scales too.

namespace gradcomp {

template <class WorkerScheme, class MasterScheme, class Backend = cpu_tag>
class in_process_cluster {
  using worker_type = worker<WorkerScheme, MasterScheme, Backend>;
  using master_type = master<WorkerScheme, MasterScheme, Backend>;

public:
  struct options {
    std::uint64_t seed = 0;
    aggregation rule = aggregation::mean;
    bool worker_feedback = false; ///< error feedback on every worker (Q_W)
    bool master_feedback = false; ///< error feedback on the master (Q_M)
    bool share_scales = false;    ///< workers quantize with the max of their scales (TernGrad)
    bool measure_error = true;    ///< per-span compression error in the statistics
    /// The master sums the workers' integer levels exactly (master::options::sum_levels); codes
    /// with scales need share_scales. What mpi_cluster's summed_levels mode computes.
    bool sum_levels = false;
  };

  in_process_cluster(WorkerScheme q_w, MasterScheme q_m, const model_layout& layout,
                     std::size_t workers, options opt)
      : master_(q_w, q_m, layout, workers,
                {opt.seed, opt.rule, opt.master_feedback, opt.sum_levels}),
        opt_(opt), sent_(workers) {
    detail::require(!opt.sum_levels || opt.share_scales || !master_.sums_of_levels()->scaled(),
                    errc::invalid_parameter,
                    "sum_levels: the workers' codes carry scales, which they must share "
                    "(share_scales)");
    workers_.reserve(workers);
    for (std::size_t r = 0; r < workers; ++r) {
      workers_.emplace_back(q_w, q_m, layout, static_cast<std::uint32_t>(r),
                            typename worker_type::options{opt.seed, opt.worker_feedback});
    }
  }

  [[nodiscard]] std::size_t size() const noexcept { return workers_.size(); }
  [[nodiscard]] worker_type& worker_at(std::size_t r) { return workers_.at(r); }
  [[nodiscard]] master_type& coordinator() noexcept { return master_; }

  /// One step: worker r compresses scale * grads[r] (+ its residual), the master aggregates and
  /// recompresses, and `update` receives the decoded broadcast. Errors: a gradient count other
  /// than the number of workers, and every error of the roles; worker residuals are only changed
  /// by successful compressions.
  template <class Exec>
  step_stats step(const Exec& exec, std::span<const std::span<const float>> grads,
                  std::uint64_t step, float scale, std::span<float> update) {
    detail::require(grads.size() == workers_.size(), errc::size_mismatch,
                    std::to_string(grads.size()) + " gradients for " +
                        std::to_string(workers_.size()) + " workers");
    const model_layout& layout = workers_.front().layout();
    const auto& up_plan = workers_.front().worker_codec().spans();
    const auto& down_plan = workers_.front().master_codec().spans();
    step_stats st;
    st.up = detail::traffic_table(up_plan, layout);
    st.down = detail::traffic_table(down_plan, layout);
    std::vector<double> err(up_plan.size()), norm(up_plan.size());

    using clock = std::chrono::steady_clock;
    auto t0 = clock::now();
    const std::vector<float> shared = shared_scales(exec, grads, step, scale);
    for (std::size_t r = 0; r < workers_.size(); ++r) { // each valid until r's next compress
      sent_[r] = workers_[r].compress(exec, grads[r], step, scale, shared);
    }
    auto t1 = clock::now();
    master_.begin(step);
    for (const auto& m : sent_) {
      master_.receive(exec, m);
    }
    const auto bcast = master_.broadcast(exec);
    auto t2 = clock::now();
    workers_.front().decompress(exec, bcast, step, update);
    auto t3 = clock::now();

    for (std::size_t r = 0; r < workers_.size(); ++r) {
      count(exec, sent_[r], up_plan, workers_[r].memory(), st.up, err, norm);
      st.bytes_up += sent_[r].size();
    }
    detail::finish_errors(st.up, err, norm);
    std::vector<double> derr(down_plan.size()), dnorm(down_plan.size());
    count(exec, bcast, down_plan, master_.memory(), st.down, derr, dnorm);
    detail::finish_errors(st.down, derr, dnorm);
    st.bytes_down = bcast.size() * workers_.size();
    detail::record_times(st, t0, t1, t2, t3);
    return st;
  }

private:
  /// count_message on host copies of the message and, with measure_error, of what its sender
  /// compressed and what the message decodes to (the backend's memory read through staging).
  template <class Exec, class Memory>
  void count(const Exec& exec, std::span<const std::byte> msg, const std::vector<span_desc>& plan,
             const Memory& mem, std::vector<span_traffic>& table, std::vector<double>& err,
             std::vector<double>& norm) {
    const auto host_msg = detail::host_view(exec, msg, staged_message_);
    if (!opt_.measure_error) {
      detail::count_message(host_msg, plan, {}, {}, table, err, norm);
      return;
    }
    detail::count_message(host_msg, plan, detail::host_view(exec, mem.last_input(), staged_input_),
                          detail::host_view(exec, mem.last_sent(), staged_sent_), table, err, norm);
  }

  /// With share_scales: every worker's scales, then the elementwise max (one extra exchange of
  /// a few floats per span in a real cluster); else none.
  template <class Exec>
  std::vector<float> shared_scales(const Exec& exec, std::span<const std::span<const float>> grads,
                                   std::uint64_t step, float scale) {
    std::vector<float> shared;
    if (!opt_.share_scales) {
      return shared;
    }
    for (std::size_t r = 0; r < workers_.size(); ++r) {
      const std::vector<float> local = workers_[r].local_scales(exec, grads[r], step, scale);
      if (r == 0) {
        shared = local;
      }
      for (std::size_t i = 0; i < local.size(); ++i) {
        shared[i] = std::max(shared[i], local[i]);
      }
    }
    return shared;
  }

  master_type master_;
  std::vector<worker_type> workers_;
  options opt_;
  std::vector<std::span<const std::byte>> sent_;
  std::vector<std::byte> staged_message_;
  std::vector<float> staged_input_, staged_sent_;
};

} // namespace gradcomp
