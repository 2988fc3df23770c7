// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../codec.hpp"
#include "../detail/backend_buffer.hpp"
#include "../detail/feedback_ops.hpp"
#include "../error.hpp"
#include "../layout/model_layout.hpp"
#include "../random/stream_key.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

/// @file
/// Error feedback (SPECS.md §1.6): what a compressor drops is kept in a residual and added to the
/// next input, so nothing is lost over time. One fp32 residual per element of the layout: with a
/// layer-wise scheme that is one residual per tensor, with an entire-model scheme one for the flat
/// vector (the same memory, partitioned differently).
///
/// Two documented targets, selected by the caller through `scale`:
/// - feedback on updates (EF-SGD, Karimireddy et al. 2019): p = gamma g + e with gamma the
///   learning rate; the decoded message is the step itself, x <- x - mean(Delta). When the
///   learning rate changes, the residual keeps steps taken at the old rate (the method's intent).
/// - feedback on gradients (GRACE's residual memory): p = g + e (scale 1); the learning rate is
///   applied after communication, x <- x - gamma mean(Delta). With a schedule, a residual carried
///   across a rate change is applied at the new rate, i.e. rescaled by gamma_new / gamma_old
///   compared with EF-SGD. Identical to EF-SGD for a constant rate.
///
/// Invariants (tested): e_{t+1} = p_t - Delta_t computed in fp32 (for sparsifiers Delta_t is p_t or
/// 0 per element, so e_{t+1} + Delta_t == p_t bitwise); sum_t Delta_t + e_T = sum_t scale g_t; the
/// identity compressor gives e = 0 and plain SGD bit for bit. A failing encode leaves the residual
/// unchanged.
///
/// Backend: where the residual lives and the calls run. cpu_tag (the default) keeps it in host
/// memory; cuda_tag (from <gradcomp/cuda.cuh>) in device memory, with device gradients and
/// messages and cuda_policy at the calls: the same operations in the same order, so the same
/// messages and residuals bit for bit. residual(), last_input() and last_sent() are in the
/// backend's memory; restore() takes a host copy.

namespace gradcomp {

template <class Scheme, class Backend = cpu_tag>
class error_feedback {
public:
  error_feedback(Scheme scheme, model_layout layout)
      : codec_(std::move(scheme), std::move(layout)), residual_(codec_.layout().total_size()),
        input_(residual_.size()), sent_(residual_.size()) {}

  [[nodiscard]] codec_for_t<Scheme>& codec() noexcept { return codec_; }
  [[nodiscard]] const model_layout& layout() const noexcept { return codec_.layout(); }
  [[nodiscard]] std::size_t max_encoded_bytes() const {
    return codec_.template max_encoded_bytes<float>();
  }

  /// Encodes C(p), p = scale * grad + residual, into out; then residual <- p - Delta, with Delta
  /// the message's decoded value. With `shared_scales` (codec::local_scales layout), C quantizes
  /// with those scales. Returns the bytes written. Errors: those of codec::encode and
  /// invalid_parameter for a non-finite scale; the residual is unchanged on error.
  template <class Exec>
  std::size_t encode(const Exec& exec, std::span<const float> grad, float scale,
                     std::span<std::byte> out, const stream_key& key,
                     std::span<const float> shared_scales = {}) {
    corrected_input(exec, grad, scale);
    const std::span<const float> p = detail::view(input_);
    const std::size_t bytes = encode_input(exec, p, out, key, shared_scales); // may throw
    codec_.decode(exec, std::span<const std::byte>(out.data(), bytes), detail::view(sent_));
    detail::run<detail::for_each_element>(
        exec, residual_.size(),
        detail::feedback_residual{input_.data(), sent_.data(), residual_.data()});
    return bytes;
  }

  /// The scales C would use for p = scale * grad + residual (to share them between workers).
  template <class Exec>
  std::vector<float> local_scales(const Exec& exec, std::span<const float> grad, float scale,
                                  const stream_key& key) {
    corrected_input(exec, grad, scale);
    return codec_.local_scales(exec, std::span<const float>(detail::view(input_)), key);
  }

  /// p of the last encode (what was compressed) and Delta (what the receivers decode).
  [[nodiscard]] std::span<const float> last_input() const noexcept { return detail::view(input_); }
  [[nodiscard]] std::span<const float> last_sent() const noexcept { return detail::view(sent_); }

  /// The residual, to checkpoint; restore() puts a saved one back (size and finiteness checked).
  [[nodiscard]] std::span<const float> residual() const noexcept { return detail::view(residual_); }
  void restore(std::span<const float> saved) {
    detail::require(saved.size() == residual_.size(), errc::size_mismatch,
                    "saved residual has " + std::to_string(saved.size()) +
                        " elements, layout has " + std::to_string(residual_.size()));
    for (std::size_t i = 0; i < saved.size(); ++i) {
      detail::require(std::isfinite(saved[i]), errc::non_finite_input, [&] {
        return "saved residual element " + std::to_string(i) + " is not finite";
      });
    }
    detail::copy_to(policy{}, residual_.data(), saved.data(), saved.size() * sizeof(float));
  }
  /// The last encoded message was never delivered (its step failed after it was written): the
  /// residual becomes that encode's p, so what the message carried is sent later instead of lost,
  /// as if it had decoded to zero. Call it once, right after the failed step.
  template <class Exec = detail::default_policy_t<Backend>>
  void unsend(const Exec& exec = {}) {
    detail::copy_to(exec, residual_.data(), input_.data(), residual_.size() * sizeof(float));
  }
  /// Sets the residual to 0 (on the backend's default policy, or `exec`).
  template <class Exec = detail::default_policy_t<Backend>>
  void reset(const Exec& exec = {}) {
    detail::run<detail::for_each_element>(exec, residual_.size(),
                                          detail::fill_value<float>{residual_.data(), 0.0f});
  }

private:
  using policy = detail::default_policy_t<Backend>;
  using buffer = detail::buffer_t<Backend, float>;

  template <class Exec>
  std::size_t encode_input(const Exec& exec, std::span<const float> p, std::span<std::byte> out,
                           const stream_key& key, std::span<const float> shared_scales) {
    return shared_scales.empty() ? codec_.encode(exec, p, out, key)
                                 : codec_.encode(exec, p, out, key, shared_scales);
  }

  template <class Exec>
  void corrected_input(const Exec& exec, std::span<const float> grad, float scale) {
    static_assert(std::is_same_v<typename Exec::backend_tag, Backend>,
                  "gradcomp: call error feedback with the policy of its backend (cpu for the "
                  "default, cuda_policy for error_feedback<S, cuda_tag>)");
    detail::require(std::isfinite(scale), errc::invalid_parameter,
                    "error feedback scale must be finite, got " + std::to_string(scale));
    detail::require(grad.size() == residual_.size(), errc::size_mismatch,
                    "gradient has " + std::to_string(grad.size()) + " elements, layout has " +
                        std::to_string(residual_.size()));
    detail::run<detail::for_each_element>(
        exec, grad.size(),
        detail::feedback_input{{}, scale, grad.data(), residual_.data(), input_.data()});
  }

  codec_for_t<Scheme> codec_;
  buffer residual_;
  buffer input_;
  buffer sent_;
};

} // namespace gradcomp
