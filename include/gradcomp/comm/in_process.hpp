// SPDX-License-Identifier: Apache-2.0
#pragma once

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

namespace gradcomp {

template <class WorkerScheme, class MasterScheme>
class in_process_cluster {
public:
  struct options {
    std::uint64_t seed = 0;
    aggregation rule = aggregation::mean;
    bool worker_feedback = false; ///< error feedback on every worker (Q_W)
    bool master_feedback = false; ///< error feedback on the master (Q_M)
    bool share_scales = false;    ///< workers quantize with the max of their scales (TernGrad)
    bool measure_error = true;    ///< per-span compression error in the statistics
  };

  in_process_cluster(WorkerScheme q_w, MasterScheme q_m, const model_layout& layout,
                     std::size_t workers, options opt)
      : master_(q_w, q_m, layout, workers, {opt.seed, opt.rule, opt.master_feedback}), opt_(opt) {
    workers_.reserve(workers);
    for (std::size_t r = 0; r < workers; ++r) {
      workers_.emplace_back(
          q_w, q_m, layout, static_cast<std::uint32_t>(r),
          typename worker<WorkerScheme, MasterScheme>::options{opt.seed, opt.worker_feedback});
    }
  }

  [[nodiscard]] std::size_t size() const noexcept { return workers_.size(); }
  [[nodiscard]] worker<WorkerScheme, MasterScheme>& worker_at(std::size_t r) {
    return workers_.at(r);
  }
  [[nodiscard]] master<WorkerScheme, MasterScheme>& coordinator() noexcept { return master_; }

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
    messages_.resize(workers_.size());
    for (std::size_t r = 0; r < workers_.size(); ++r) {
      const auto msg = workers_[r].compress(exec, grads[r], step, scale, shared);
      messages_[r].assign(msg.begin(), msg.end());
    }
    auto t1 = clock::now();
    master_.begin(step);
    for (const auto& m : messages_) {
      master_.receive(exec, std::span<const std::byte>(m));
    }
    const auto bcast = master_.broadcast(exec);
    auto t2 = clock::now();
    workers_.front().decompress(exec, bcast, step, update);
    auto t3 = clock::now();

    for (std::size_t r = 0; r < workers_.size(); ++r) {
      auto& mem = workers_[r].memory();
      detail::count_message(messages_[r], up_plan,
                            opt_.measure_error ? mem.last_input() : std::span<const float>{},
                            mem.last_sent(), st.up, err, norm);
      st.bytes_up += messages_[r].size();
    }
    detail::finish_errors(st.up, err, norm);
    std::vector<double> derr(down_plan.size()), dnorm(down_plan.size());
    auto& mm = master_.memory();
    detail::count_message(bcast, down_plan,
                          opt_.measure_error ? mm.last_input() : std::span<const float>{},
                          mm.last_sent(), st.down, derr, dnorm);
    detail::finish_errors(st.down, derr, dnorm);
    st.bytes_down = bcast.size() * workers_.size();
    detail::record_times(st, t0, t1, t2, t3);
    return st;
  }

private:
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

  master<WorkerScheme, MasterScheme> master_;
  std::vector<worker<WorkerScheme, MasterScheme>> workers_;
  options opt_;
  std::vector<std::vector<std::byte>> messages_;
};

} // namespace gradcomp
