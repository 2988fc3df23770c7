// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../codec.hpp"
#include "../compressor/sign_sgd.hpp"
#include "../error.hpp"
#include "../layout/model_layout.hpp"
#include "../memory/error_feedback.hpp"
#include "../random/stream_key.hpp"
#include "level_sums.hpp"
#include "worker.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

/// @file
/// The master's side of Algorithm 1: receive the n workers' Q_W messages for a step, aggregate
/// them, compress the aggregate with Q_M (optionally with its own error feedback, as in
/// DoubleSqueeze) and return the broadcast message. All-reduce is Q_M = identity.
///
/// Aggregation works on the encoded messages: sparse messages scatter-add their values into the
/// sum (no densified copy), quantized messages decode-and-add, shared-seed random-k messages add
/// their values at the shared indices. Sums are fp32 in arrival order; when the decoded values
/// are exactly representable with their sums (shared scales, small integer levels) the sum is
/// exact and independent of the order (SPECS.md §2.5 E1). The mean is sum / n.
/// Majority vote (signSGD, Bernstein et al. 2019) counts the workers' signs per element; the
/// result is +1 where at least half vote +1 (a tie is +1, like sign(0) = +1), else -1.
///
/// With options::sum_levels (codes that add: TernGrad, QSGD, sign, scaled sign; every worker on
/// the same scales) the master sums the workers' integer levels instead (framework/level_sums.hpp):
/// the sum is exact whatever the order or the scales, each element rounded once to fp32, and it
/// can come summed from a real all-reduce (receive_sums). CPU backend.

namespace gradcomp {

enum class aggregation : std::uint8_t { mean, majority_vote };

/// Backend: cpu_tag (host buffers, the default) or cuda_tag (<gradcomp/cuda.cuh>: messages, sum,
/// aggregate and Q_M's residual in device memory, cuda_policy at the calls; the same bytes).
/// begin() clears on the backend's default policy (CUDA's default stream).
template <class WorkerScheme, class MasterScheme, class Backend = cpu_tag>
class master {
public:
  struct options {
    std::uint64_t seed = 0;
    aggregation rule = aggregation::mean;
    bool error_feedback = false; ///< a master-side residual for Q_M
    bool sum_levels = false;     ///< aggregate exact sums of integer levels (level_sums)
  };

  master(WorkerScheme q_w, MasterScheme q_m, const model_layout& layout, std::size_t workers,
         options opt)
      : up_(std::move(q_w), layout), down_(std::move(q_m), layout), workers_(workers), opt_(opt),
        sum_(layout.total_size()), votes_(opt.rule == aggregation::majority_vote ? sum_.size() : 0),
        decoded_(votes_.size()), aggregate_(sum_.size()), seen_(workers),
        message_(down_.max_encoded_bytes()) {
    detail::require(workers > 0, errc::invalid_parameter, "a master needs at least one worker");
    if (opt.sum_levels) {
      detail::require(std::is_same_v<Backend, cpu_tag>, errc::invalid_parameter,
                      "level sums run on the CPU backend");
      levels_.emplace(up_.level_spans(), workers);
      level_words_.resize(levels_->words());
    }
    if (opt.rule == aggregation::majority_vote) {
      detail::require(up_.ids().compressor == sign_sgd::id, errc::invalid_parameter,
                      "majority vote aggregates sign_sgd messages; the worker scheme is " +
                          std::string(up_.compressor_name()));
    }
  }

  [[nodiscard]] std::size_t workers() const noexcept { return workers_; }
  [[nodiscard]] std::size_t received() const noexcept { return received_; }
  [[nodiscard]] error_feedback<MasterScheme, Backend>& memory() noexcept { return down_; }

  /// Starts step `step`: clears the sum and the record of who has sent.
  void begin(std::uint64_t step) {
    step_ = step;
    received_ = 0;
    const detail::default_policy_t<Backend> exec{};
    detail::run<detail::for_each_element>(exec, sum_.size(),
                                          detail::fill_value<float>{sum_.data(), 0.0f});
    detail::run<detail::for_each_element>(exec, votes_.size(),
                                          detail::fill_value<std::int32_t>{votes_.data(), 0});
    std::fill(seen_.begin(), seen_.end(), std::uint8_t{0});
    std::fill(level_words_.begin(), level_words_.end(), std::uint64_t{0});
    level_scales_.clear();
  }

  /// Adds one worker's message. Errors (nothing is added on error): another seed, step or role
  /// (wrong_step, scheme_mismatch), a rank outside [0, workers) or already received this step
  /// (duplicate_message), and every decode error.
  template <class Exec>
  void receive(const Exec& exec, std::span<const std::byte> msg) {
    const stream_key key = detail::check_message_key(exec, msg, opt_.seed, step_, role::worker);
    detail::require(key.rank < workers_, errc::invalid_parameter,
                    "message from rank " + std::to_string(key.rank) + ", the master has " +
                        std::to_string(workers_) + " workers");
    detail::require(seen_[key.rank] == 0, errc::duplicate_message,
                    "a second message from rank " + std::to_string(key.rank) + " for step " +
                        std::to_string(step_));
    if (levels_) {
      if constexpr (std::is_same_v<Backend, cpu_tag>) { // (the constructor refuses the others)
        up_.validate(exec, msg);                        // every code and scale, nothing decoded
        levels_->add(msg, level_words_, level_scales_);
      }
    } else if (opt_.rule == aggregation::majority_vote) {
      up_.decode(exec, msg, detail::view(decoded_));
      detail::run<detail::for_each_element>(exec, decoded_.size(),
                                            detail::count_vote{decoded_.data(), votes_.data()});
    } else {
      up_.decode_add(exec, msg, detail::view(sum_));
    }
    seen_[key.rank] = 1;
    ++received_;
  }

  /// With sum_levels: the levels of all workers for this step, summed elsewhere (an all-reduce
  /// of level_sums words; what n receive() calls would sum), and the scales they share, in place
  /// of the n receive() calls. Errors: protocol_error after a receive(), size_mismatch, and
  /// corrupt_payload for sums out of range (level_sums::check); nothing is taken on error.
  void receive_sums(std::span<const std::uint64_t> sums, std::span<const float> scales) {
    detail::require(levels_.has_value(), errc::protocol_error,
                    "receive_sums needs a master built with sum_levels");
    detail::require(received_ == 0, errc::protocol_error,
                    "receive_sums after " + std::to_string(received_) + " messages");
    detail::require(scales.size() == levels_->num_scales(), errc::size_mismatch,
                    std::to_string(scales.size()) + " scales with the level sums, expected " +
                        std::to_string(levels_->num_scales()));
    levels_->check(sums);
    std::copy(sums.begin(), sums.end(), level_words_.begin());
    level_scales_.assign(scales.begin(), scales.end());
    std::fill(seen_.begin(), seen_.end(), std::uint8_t{1});
    received_ = workers_;
  }

  /// The level sums of this master (options::sum_levels), else nullptr.
  [[nodiscard]] const level_sums* sums_of_levels() const noexcept {
    return levels_ ? &*levels_ : nullptr;
  }

  /// The aggregate of the step (mean or vote), after every worker was received, then Q_M of it
  /// as the broadcast message: a view valid until the next broadcast().
  template <class Exec>
  std::span<const std::byte> broadcast(const Exec& exec) {
    detail::require(received_ == workers_, errc::protocol_error,
                    "broadcast after " + std::to_string(received_) + " of " +
                        std::to_string(workers_) + " workers' messages");
    if (levels_) {
      if constexpr (std::is_same_v<Backend, cpu_tag>) {
        levels_->values(level_words_, level_scales_, detail::view(sum_));
      }
    }
    if (opt_.rule == aggregation::majority_vote && levels_) {
      detail::run<detail::for_each_element>(exec, aggregate_.size(),
                                            detail::vote_of_sum{sum_.data(), aggregate_.data()});
    } else if (opt_.rule == aggregation::majority_vote) {
      detail::run<detail::for_each_element>(exec, aggregate_.size(),
                                            detail::vote_result{votes_.data(), aggregate_.data()});
    } else {
      detail::run<detail::for_each_element>(
          exec, aggregate_.size(),
          detail::mean_of_sum{sum_.data(), static_cast<float>(workers_), aggregate_.data()});
    }
    const std::size_t bytes =
        down_.encode(exec, std::span<const float>(detail::view(aggregate_)), 1.0f,
                     detail::view(message_), stream_key{opt_.seed, step_, 0, role::master});
    if (!opt_.error_feedback) {
      down_.reset(exec);
    }
    return {message_.data(), bytes};
  }

  /// The last broadcast() was never delivered (the step failed elsewhere): with error feedback,
  /// its content returns to the master's residual (error_feedback::unsend); without, nothing.
  template <class Exec = detail::default_policy_t<Backend>>
  void unsend(const Exec& exec = {}) {
    if (opt_.error_feedback) {
      down_.unsend(exec);
    }
  }

  /// The sum of the decoded worker messages (mean aggregation) and the aggregate Q_M compressed.
  [[nodiscard]] std::span<const float> sum() const noexcept { return detail::view(sum_); }
  [[nodiscard]] std::span<const float> aggregate() const noexcept {
    return detail::view(aggregate_);
  }

private:
  codec_for_t<WorkerScheme> up_;
  error_feedback<MasterScheme, Backend> down_;
  std::size_t workers_;
  options opt_;
  detail::buffer_t<Backend, float> sum_;
  detail::buffer_t<Backend, std::int32_t> votes_;
  detail::buffer_t<Backend, float> decoded_;
  detail::buffer_t<Backend, float> aggregate_;
  std::vector<std::uint8_t> seen_;
  detail::buffer_t<Backend, std::byte> message_;
  std::optional<level_sums> levels_;
  std::vector<std::uint64_t> level_words_; ///< this step's level sums (sum_levels)
  std::vector<float> level_scales_;        ///< the scales the workers share (sum_levels)
  std::uint64_t step_ = 0;
  std::size_t received_ = 0;
};

} // namespace gradcomp
