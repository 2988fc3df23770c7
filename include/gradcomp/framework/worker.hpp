// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../codec.hpp"
#include "../encoding/wire_header.hpp"
#include "../error.hpp"
#include "../layout/model_layout.hpp"
#include "../memory/error_feedback.hpp"
#include "../random/stream_key.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

/// @file
/// The worker's side of Algorithm 1 (SPECS.md §1.1): compress the local gradient with Q_W (with
/// or without error feedback), send the message, and decode the master's broadcast of Q_M of the
/// aggregate into the update. Messages carry (seed, step, rank, role) in their header; a worker
/// rejects a broadcast from another seed, step or role with a named error.

namespace gradcomp {

/// The key checks shared by workers and the master: the message's seed, step and role.
namespace detail {
inline stream_key check_message_key(const message_info& info, std::uint64_t seed,
                                    std::uint64_t step, role expected_role) {
  const stream_key key = stream_key::unpack(info.seed, info.stream_word);
  require(key.seed == seed, errc::scheme_mismatch,
          "message seed " + std::to_string(key.seed) + ", expected " + std::to_string(seed));
  require(key.step == step, errc::wrong_step,
          "message is for step " + std::to_string(key.step) + ", expected step " +
              std::to_string(step));
  require(key.role == expected_role, errc::scheme_mismatch,
          std::string("message comes from a ") + (key.role == role::master ? "master" : "worker") +
              ", expected a " + (expected_role == role::master ? "master" : "worker"));
  return key;
}

/// The same checks on a message in the memory of exec's backend. On the CPU the whole frame is
/// parsed first (a corrupt message fails its checksum before its key is read); an offloading
/// backend (CUDA) copies the fixed header to the host and checks its start and key fields, and
/// the decode that follows validates the rest on the device.
template <class Exec>
stream_key check_message_key(const Exec& exec, std::span<const std::byte> msg, std::uint64_t seed,
                             std::uint64_t step, role expected_role) {
  if constexpr (offloaded_v<Exec>) {
    std::array<std::byte, wire_header_bytes> header{};
    require(msg.size() >= header.size(), errc::truncated_message,
            "message of " + std::to_string(msg.size()) + " bytes, shorter than its header");
    copy_to(exec, header.data(), msg.data(), header.size());
    check_frame_start(header, msg.size());
    message_info info;
    info.seed = load_le<std::uint64_t>(header.data() + 24);
    info.stream_word = load_le<std::uint64_t>(header.data() + 32);
    return check_message_key(info, seed, step, expected_role);
  } else {
    const auto blocks_sum = [&exec, msg](std::uint64_t first, std::uint64_t end) {
      return run<sum_checksum_blocks>(exec, msg.data(), msg.size(), first, end);
    };
    return check_message_key(parse_frame(msg, blocks_sum), seed, step, expected_role);
  }
}
} // namespace detail

/// Backend: cpu_tag (host buffers, the default) or cuda_tag (<gradcomp/cuda.cuh>: gradients,
/// messages, residual and update in device memory, cuda_policy at the calls; the same bytes).
template <class WorkerScheme, class MasterScheme, class Backend = cpu_tag>
class worker {
public:
  struct options {
    std::uint64_t seed = 0;
    bool error_feedback = false; ///< keep a residual of what Q_W dropped
  };

  worker(WorkerScheme q_w, MasterScheme q_m, const model_layout& layout, std::uint32_t rank,
         options opt)
      : up_(std::move(q_w), layout), down_(std::move(q_m), layout), rank_(rank), opt_(opt),
        message_(up_.max_encoded_bytes()) {}

  [[nodiscard]] std::uint32_t rank() const noexcept { return rank_; }
  [[nodiscard]] const model_layout& layout() const noexcept { return up_.layout(); }
  [[nodiscard]] error_feedback<WorkerScheme, Backend>& memory() noexcept { return up_; }
  [[nodiscard]] codec_for_t<WorkerScheme>& worker_codec() noexcept { return up_.codec(); }
  [[nodiscard]] codec_for_t<MasterScheme>& master_codec() noexcept { return down_; }

  [[nodiscard]] stream_key key(std::uint64_t step) const {
    return {opt_.seed, step, rank_, role::worker};
  }

  /// Q_W's scales for this step's input (for TernGrad scaler sharing: the cluster takes the
  /// elementwise max over workers and passes it to compress()).
  template <class Exec>
  std::vector<float> local_scales(const Exec& exec, std::span<const float> grad, std::uint64_t step,
                                  float scale = 1.0f) {
    return up_.local_scales(exec, grad, scale, key(step));
  }

  /// Compresses p = scale * grad (+ the residual with error feedback) into the worker's message
  /// buffer and returns a view of it, valid until the next compress(). `scale` is the learning
  /// rate for feedback on updates, 1 for feedback on gradients (memory/error_feedback.hpp).
  template <class Exec>
  std::span<const std::byte> compress(const Exec& exec, std::span<const float> grad,
                                      std::uint64_t step, float scale = 1.0f,
                                      std::span<const float> shared_scales = {}) {
    const std::size_t bytes =
        up_.encode(exec, grad, scale, detail::view(message_), key(step), shared_scales);
    if (!opt_.error_feedback) {
      up_.reset(exec);
    }
    return {message_.data(), bytes};
  }

  /// The last compress()'s message was never delivered (the step failed elsewhere): with error
  /// feedback, its content returns to the residual (error_feedback::unsend); without, nothing.
  template <class Exec = detail::default_policy_t<Backend>>
  void unsend(const Exec& exec = {}) {
    if (opt_.error_feedback) {
      up_.unsend(exec);
    }
  }

  /// Decodes the master's broadcast for `step` into update (the whole flat buffer). Errors: a
  /// message from another seed, step or role, and every error of codec::decode; update is
  /// untouched on error.
  template <class Exec>
  void decompress(const Exec& exec, std::span<const std::byte> broadcast, std::uint64_t step,
                  std::span<float> update) {
    (void)detail::check_message_key(exec, broadcast, opt_.seed, step, role::master);
    down_.decode(exec, broadcast, update);
  }

private:
  error_feedback<WorkerScheme, Backend> up_;
  codec_for_t<MasterScheme> down_;
  std::uint32_t rank_;
  options opt_;
  detail::buffer_t<Backend, std::byte> message_;
};

} // namespace gradcomp
