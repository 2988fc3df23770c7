// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../backend/cpu/lowrank_kernels.hpp"
#include "../backend/cpu/parallel.hpp"
#include "../backend/tags.hpp"
#include "../error.hpp"
#include "../layout/model_layout.hpp"
#include "../random/stream_key.hpp"
#include "lowrank_message.hpp"
#include "matrix_plan.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

/// @file
/// PowerSGD (Vogels, Karimireddy, Jaggi, NeurIPS 2019): rank-r compression by one power
/// iteration per step, warm-started from the previous step's Q, with error feedback. One object
/// per worker; a step is two exchanges of summable fp32 factors (lowrank/lowrank_message.hpp),
/// which any all-reduce can carry: every worker sends its message and receives the sum of all.
///
///   encode_p(g):   M = g + e per matrix (matrix_plan.hpp); P = M Q;      sends P (and raw layers)
///   encode_q(ΣP):  P^ = orthonormalize(ΣP); Q_w = M^T P^;                sends Q_w
///   decode(ΣQ):    out = P^ (ΣQ / n)^T, raw layers ΣM / n;  e = M - P^ Q_w^T;  Q <- ΣQ / n
///
/// The residual is this worker's part outside the shared subspace (Vogels et al., Algorithm 2):
/// n out + sum of new residuals = sum of the n inputs M, and a raw layer leaves none. Q starts
/// (and a Q column that became zero restarts) from Philox uniforms in [-1, 1) keyed by the seed,
/// the step and the factor element, the same on every worker. Every product has a fixed
/// summation order (backend/cpu/lowrank_kernels.hpp), so workers, runs and thread counts agree
/// bit for bit. A failed call changes nothing: a rejected message can be retried, abort_step()
/// drops a step without touching the residual.

namespace gradcomp {

class powersgd {
public:
  powersgd(const model_layout& layout, powersgd_options opt, std::uint32_t worker_rank = 0)
      : plan_(layout, opt), opt_(opt), rank_(worker_rank), layout_(layout),
        residual_(opt.error_feedback ? layout.total_size() : 0), input_(layout.total_size()),
        p_(plan_.p_floats()), q_(plan_.q_floats()), q_local_(plan_.q_floats()) {
    stream_key{opt.seed, 0, worker_rank, role::worker}.validate();
    restart_zero_columns();
  }

  [[nodiscard]] const lowrank_plan& plan() const noexcept { return plan_; }
  [[nodiscard]] const powersgd_options& options() const noexcept { return opt_; }
  [[nodiscard]] std::uint64_t step() const noexcept { return step_; }
  [[nodiscard]] std::uint32_t worker_rank() const noexcept { return rank_; }
  /// Bytes of this worker's message (and of a sum) in each round.
  [[nodiscard]] std::size_t message_bytes(lowrank_round round) const noexcept {
    return detail::lowrank_message_bytes(plan_, round);
  }
  /// The residual e (empty without error feedback) and the warm-start Q (round-Q layout): with
  /// step(), the state a checkpoint keeps.
  [[nodiscard]] std::span<const float> residual() const noexcept { return residual_; }
  [[nodiscard]] std::span<const float> warm_start() const noexcept { return q_; }

  /// Round 1: M = grad + e; P = M Q; writes this worker's P message into msg. `exec` (cpu,
  /// cpu_threads(n)) splits each large matrix's rows, and each large raw layer, across threads:
  /// the same bytes for every thread count.
  void encode_p(const cpu_policy& exec, std::span<const float> grad, std::vector<std::byte>& msg) {
    require_phase(phase::idle, "encode_p");
    detail::require(grad.size() == plan_.total_size(), errc::size_mismatch,
                    "gradient of " + std::to_string(grad.size()) + " elements, layout has " +
                        std::to_string(plan_.total_size()));
    for (const lowrank_matrix& m : plan_.matrices()) {
      if (!m.compressed()) { // a raw matrix goes straight into the message
        detail::parallel_parts(exec, m.size, parallel_elements,
                               [&](std::size_t b, std::size_t e, std::size_t) {
                                 gather(grad, m.begin + b, e - b, p_.data() + m.p_offset + b);
                               });
        continue;
      }
      // M = grad + e a few rows at a time, multiplied while they are in cache
      const std::size_t rows = std::max<std::size_t>(1, gather_block / m.cols);
      const std::size_t blocks = (m.rows + rows - 1) / rows;
      detail::parallel_parts(
          exec, blocks, std::max<std::size_t>(1, parallel_elements / (rows * m.cols)),
          [&](std::size_t b0, std::size_t b1, std::size_t) {
            for (std::size_t i = b0 * rows; i < std::min(b1 * rows, m.rows); i += rows) {
              const std::size_t first = std::min(i * m.cols, m.size);
              const std::size_t n = std::min(rows * m.cols, m.size - first);
              float* x = input_.data() + m.begin + first;
              gather(grad, m.begin + first, n, x);
              backend::cpu::with_rank(m.rank, [&]<std::size_t R>() {
                backend::cpu::lowrank_multiply<R>(x, std::min(rows, m.rows - i), m.cols, n,
                                                  q_.data() + m.q_offset,
                                                  p_.data() + m.p_offset + i * R);
              });
            }
          });
    }
    require_finite(p_, lowrank_round::p);
    detail::write_lowrank_message(plan_, lowrank_round::p, key(role::worker), p_, msg);
    phase_ = phase::p_sent;
  }
  void encode_p(std::span<const float> grad, std::vector<std::byte>& msg) {
    encode_p(cpu, grad, msg);
  }

  /// Round 2: from the sum of the P messages, P^ = orthonormalize(sum P); Q_w = M^T P^; writes
  /// this worker's Q message into msg.
  void encode_q(const cpu_policy& exec, std::span<const std::byte> p_sum,
                std::vector<std::byte>& msg) {
    require_phase(phase::p_sent, "encode_q");
    const auto view = check(lowrank_round::p, p_sum);
    for (std::size_t i = 0; i < p_.size(); ++i) {
      p_[i] = view.value(i);
    }
    contributors_ = view.key.rank;
    for (const lowrank_matrix& m : plan_.matrices()) {
      if (m.compressed()) {
        backend::cpu::with_rank(m.rank, [&]<std::size_t R>() {
          float* p = p_.data() + m.p_offset;
          backend::cpu::orthonormalize_columns<R>(p, m.rows);
          // threads take column ranges: each column still adds the rows in order
          detail::parallel_parts(exec, m.cols, std::max<std::size_t>(1, parallel_elements / m.rows),
                                 [&](std::size_t k0, std::size_t k1, std::size_t) {
                                   backend::cpu::lowrank_multiply_transposed<R>(
                                       input_.data() + m.begin, m.rows, m.cols, m.size, p,
                                       q_local_.data() + m.q_offset, k0, k1);
                                 });
        });
      }
    }
    require_finite(q_local_, lowrank_round::q);
    detail::write_lowrank_message(plan_, lowrank_round::q, key(role::worker), q_local_, msg);
    phase_ = phase::q_sent;
  }
  void encode_q(std::span<const std::byte> p_sum, std::vector<std::byte>& msg) {
    encode_q(cpu, p_sum, msg);
  }

  /// End of the step: from the sum of the Q messages (of the same workers as the P sum), writes
  /// the mean gradient estimate into out, updates the residual and the warm start.
  void decode(const cpu_policy& exec, std::span<const std::byte> q_sum, std::span<float> out) {
    require_phase(phase::q_sent, "decode");
    detail::require(out.size() == plan_.total_size(), errc::size_mismatch,
                    "output of " + std::to_string(out.size()) + " elements, layout has " +
                        std::to_string(plan_.total_size()));
    const auto view = check(lowrank_round::q, q_sum);
    detail::require(view.key.rank == contributors_, errc::protocol_error,
                    "the Q sum has " + std::to_string(view.key.rank) +
                        " contributions, the P sum had " + std::to_string(contributors_));
    // |P^ Q^T| <= rank * max |Q| (P^'s columns have unit norm): a sum within this bound cannot
    // overflow the output
    const auto workers = static_cast<float>(contributors_);
    float largest = 0.0f;
    for (std::size_t i = 0; i < q_local_.size(); ++i) {
      largest = std::max(largest, std::abs(view.value(i) / workers));
    }
    detail::require(largest <= std::numeric_limits<float>::max() /
                                   static_cast<float>(powersgd_options::max_rank),
                    errc::value_out_of_range,
                    "the Q sum holds values the reconstruction would overflow fp32 with");
    for (std::size_t i = 0; i < q_.size(); ++i) {
      q_[i] = view.value(i) / workers;
    }
    for (const lowrank_matrix& m : plan_.matrices()) {
      float* o = out.data() + m.begin;
      if (!m.compressed()) {
        for (std::size_t i = 0; i < m.size; ++i) {
          o[i] = p_[m.p_offset + i] / workers;
        }
        if (opt_.error_feedback) {
          std::fill_n(residual_.data() + m.begin, m.size, 0.0f);
        }
        continue;
      }
      backend::cpu::with_rank(m.rank, [&]<std::size_t R>() {
        detail::parallel_parts(
            exec, m.rows, std::max<std::size_t>(1, parallel_elements / m.cols),
            [&](std::size_t i0, std::size_t i1, std::size_t) { // rows [i0, i1)
              const std::size_t first = std::min(i0 * m.cols, m.size);
              const std::size_t stored = std::min((i1 - i0) * m.cols, m.size - first);
              const float* p = p_.data() + m.p_offset + i0 * R;
              backend::cpu::lowrank_reconstruct<R>(p, q_.data() + m.q_offset, i1 - i0, m.cols,
                                                   stored, o + first);
              if (opt_.error_feedback) { // e = M - P^ Q_w^T
                backend::cpu::lowrank_reconstruct<R>(
                    p, q_local_.data() + m.q_offset, i1 - i0, m.cols, stored,
                    residual_.data() + m.begin + first, input_.data() + m.begin + first);
              }
            });
      });
    }
    ++step_;
    phase_ = phase::idle;
    restart_zero_columns();
  }
  void decode(std::span<const std::byte> q_sum, std::span<float> out) { decode(cpu, q_sum, out); }

  /// Sums the workers' messages of one round of this step (any worker may; every one that sums
  /// the same messages writes the same bytes). See detail::sum_lowrank_messages.
  void sum(lowrank_round round, std::span<const std::span<const std::byte>> msgs,
           std::vector<std::byte>& out) const {
    detail::sum_lowrank_messages(plan_, round, opt_.seed, step_, msgs, out);
  }

  /// Drops a step in progress: residual, warm start and step are as before encode_p.
  void abort_step() noexcept { phase_ = phase::idle; }

  /// Restores a checkpoint: the step, the warm start (plan().q_floats() values) and the residual
  /// (the layout's size with error feedback, else empty); all values finite.
  void restore(std::uint64_t step, std::span<const float> warm_start,
               std::span<const float> residual) {
    stream_key{opt_.seed, step, rank_, role::worker}.validate();
    detail::require(warm_start.size() == q_.size(), errc::size_mismatch,
                    "warm start of " + std::to_string(warm_start.size()) +
                        " values, the plan's Q "
                        "factors take " +
                        std::to_string(q_.size()));
    detail::require(residual.size() == residual_.size(), errc::size_mismatch,
                    "residual of " + std::to_string(residual.size()) + " values, expected " +
                        std::to_string(residual_.size()));
    const auto finite = [](float v) { return std::isfinite(v); };
    detail::require(std::all_of(warm_start.begin(), warm_start.end(), finite) &&
                        std::all_of(residual.begin(), residual.end(), finite),
                    errc::non_finite_input, "checkpoint holds a non-finite value");
    std::copy(warm_start.begin(), warm_start.end(), q_.begin());
    std::copy(residual.begin(), residual.end(), residual_.begin());
    step_ = step;
    phase_ = phase::idle;
    restart_zero_columns();
  }

private:
  enum class phase { idle, p_sent, q_sent };

  [[nodiscard]] stream_key key(role r) const noexcept { return {opt_.seed, step_, rank_, r}; }

  void require_phase(phase want, const char* call) const {
    static constexpr const char* names[] = {"no step in progress", "the P message sent",
                                            "the Q message sent"};
    detail::require(phase_ == want, errc::protocol_error,
                    std::string("powersgd::") + call + " called with " +
                        names[static_cast<int>(phase_)] + "; it needs " +
                        names[static_cast<int>(want)]);
  }

  [[nodiscard]] detail::lowrank_message_view check(lowrank_round round,
                                                   std::span<const std::byte> msg) const {
    return detail::check_lowrank_message(plan_, round, opt_.seed, step_, role::master, msg);
  }

  /// A factor that overflowed fp32 (a gradient near the float range) is named at its sender.
  void require_finite(std::span<const float> values, lowrank_round round) const {
    for (const lowrank_matrix& m : plan_.matrices()) {
      const std::size_t at = round == lowrank_round::p ? m.p_offset : m.q_offset;
      const std::size_t n = detail::lowrank_span_floats(m, round);
      detail::require(std::all_of(values.begin() + at, values.begin() + at + n,
                                  [](float v) { return std::isfinite(v); }),
                      errc::value_out_of_range, [&] {
                        return std::string("the ") + detail::lowrank_round_name(round) +
                               " factor of matrix '" + m.name + "' overflows fp32";
                      });
    }
  }

  /// Elements gathered and multiplied at a time (they stay in the first-level cache).
  static constexpr std::size_t gather_block = 8192;
  /// The fewest elements one thread takes (backend/cpu/parallel.hpp).
  static constexpr std::size_t parallel_elements = 32768;

  /// out[0, n) = grad + e from element `begin`; a non-finite sum names its layer and element.
  void gather(std::span<const float> grad, std::size_t begin, std::size_t n, float* out) const {
    const float* e = opt_.error_feedback ? residual_.data() + begin : nullptr;
    if (!backend::cpu::add_finite(grad.data() + begin, e, out, n)) [[unlikely]] {
      const auto* bad = std::find_if(out, out + n, [](float v) { return !std::isfinite(v); });
      name_non_finite(begin + static_cast<std::size_t>(bad - out));
    }
  }
  [[noreturn]] void name_non_finite(std::size_t i) const {
    for (const layer_info& l : layout_.layers()) {
      if (i >= l.offset && i - l.offset < l.size) {
        detail::fail(errc::non_finite_input, "non-finite gradient (plus residual) in layer '" +
                                                 l.name + "' at element " +
                                                 std::to_string(i - l.offset));
      }
    }
    detail::fail(errc::non_finite_input, "non-finite gradient at element " + std::to_string(i));
  }

  /// Draws every Q column that is all zeros (all of them at the start).
  void restart_zero_columns() {
    const stream_key shared{opt_.seed, step_, 0, role::master}; // not this worker's rank
    const random_stream rng(opt_.seed, shared.stream_word(), random_purpose::lowrank_start);
    for (const lowrank_matrix& m : plan_.matrices()) {
      for (std::size_t j = 0; j < m.rank; ++j) {
        float* q = q_.data() + m.q_offset + j * m.cols; // column j of Q
        if (std::all_of(q, q + m.cols, [](float v) { return v == 0.0f; })) {
          for (std::size_t k = 0; k < m.cols; ++k) {
            const std::uint32_t bits = rng.bits32(m.q_offset + j * m.cols + k);
            q[k] = static_cast<float>(bits >> 8) * 0x1p-23f - 1.0f;
          }
        }
      }
    }
  }

  lowrank_plan plan_;
  powersgd_options opt_;
  std::uint32_t rank_ = 0;
  model_layout layout_;
  std::vector<float> residual_;
  std::vector<float> input_;   ///< M of the step in progress
  std::vector<float> p_;       ///< round-P buffer: P, then P^ and the raw sums
  std::vector<float> q_;       ///< warm start: the previous step's mean Q
  std::vector<float> q_local_; ///< this worker's Q_w of the step in progress
  std::uint64_t step_ = 0;
  std::uint32_t contributors_ = 0;
  phase phase_ = phase::idle;
};

} // namespace gradcomp
