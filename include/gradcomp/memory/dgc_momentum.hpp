// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../codec.hpp"
#include "../detail/backend_buffer.hpp"
#include "../detail/feedback_ops.hpp"
#include "../error.hpp"
#include "../layout/model_layout.hpp"
#include "../math/canonical_sum.hpp"
#include "../random/stream_key.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

/// @file
/// DGC momentum correction (Lin et al., ICLR 2018; SPECS.md §1.6) around a sparsifying scheme.
/// Per worker, with momentum m:
///     g <- g * min(1, clip / ||g||)   (local gradient clipping, when clip > 0)
///     u <- m u + g                     (local momentum)
///     v <- v + u                       (local accumulation of the momentum)
///     send C(v); then v <- 0 and, with momentum-factor masking, u <- 0 where C(v) sent a value.
/// The master applies no momentum: w <- w - eta * mean of the decoded messages.
/// Notes: with masking, a coordinate that is sent restarts its momentum (DGC's choice), so at
/// ratio 1 DGC is plain SGD; without masking (`mask_momentum = false`) ratio 1 is momentum SGD bit
/// for bit. Sampled-threshold selection and warm-up schedules are the caller's choice of scheme
/// and ratio per step. A failing encode leaves u and v unchanged.
///
/// Backend: cpu_tag (the default) keeps u and v in host memory; cuda_tag (<gradcomp/cuda.cuh>) in
/// device memory, with device gradients and messages and cuda_policy at encode(): the same
/// operations in the same order (the clipping norm is the canonical sum of squares of
/// math/canonical_sum.hpp on both), so the same messages and state bit for bit. momentum(),
/// accumulation() and last_sent_mask() are in the backend's memory; restore() takes host copies.

namespace gradcomp {

template <class Scheme, class Backend = cpu_tag>
class dgc_momentum {
  static_assert(Scheme::is_sparse,
                "gradcomp: DGC momentum correction needs a sparsifying scheme (top-k, random-k, "
                "threshold): it masks the coordinates the message sent");

public:
  struct options {
    float momentum = 0.9f;
    float clip_norm = 0.0f; ///< local clipping threshold on ||g||_2; 0 = off
    bool mask_momentum = true;
  };

  dgc_momentum(Scheme scheme, model_layout layout, options opt)
      : codec_(std::move(scheme), std::move(layout)), opt_(opt), u_(codec_.layout().total_size()),
        v_(u_.size()), next_u_(u_.size()), next_v_(u_.size()), sent_mask_(u_.size()) {
    detail::require(std::isfinite(opt.momentum) && opt.momentum >= 0.0f && opt.momentum < 1.0f,
                    errc::invalid_parameter,
                    "dgc momentum must be in [0, 1), got " + std::to_string(opt.momentum));
    detail::require(std::isfinite(opt.clip_norm) && opt.clip_norm >= 0.0f, errc::invalid_parameter,
                    "dgc clip_norm must be finite and >= 0, got " + std::to_string(opt.clip_norm));
  }

  [[nodiscard]] codec_for_t<Scheme>& codec() noexcept { return codec_; }
  [[nodiscard]] std::size_t max_encoded_bytes() const {
    return codec_.template max_encoded_bytes<float>();
  }

  /// One DGC step on `grad`: updates u and v, encodes C(v) into out, masks. Returns the bytes.
  template <class Exec>
  std::size_t encode(const Exec& exec, std::span<const float> grad, std::span<std::byte> out,
                     const stream_key& key) {
    static_assert(std::is_same_v<typename Exec::backend_tag, Backend>,
                  "gradcomp: call DGC momentum with the policy of its backend (cpu for the "
                  "default, cuda_policy for dgc_momentum<S, cuda_tag>)");
    detail::require(grad.size() == u_.size(), errc::size_mismatch,
                    "gradient has " + std::to_string(grad.size()) + " elements, layout has " +
                        std::to_string(u_.size()));
    const float g_scale = clip_scale(exec, grad);
    detail::run<detail::for_each_element>(exec, u_.size(),
                                          detail::dgc_accumulate{{},
                                                                 opt_.momentum,
                                                                 g_scale,
                                                                 grad.data(),
                                                                 u_.data(),
                                                                 v_.data(),
                                                                 next_u_.data(),
                                                                 next_v_.data()});
    const std::size_t bytes =
        codec_.encode(exec, std::span<const float>(detail::view(next_v_)), out, key);
    codec_.sent_elements(exec, std::span<const std::byte>(out.data(), bytes),
                         detail::view(sent_mask_));
    detail::run<detail::for_each_element>(exec, u_.size(),
                                          detail::dgc_mask{sent_mask_.data(), next_u_.data(),
                                                           next_v_.data(), u_.data(), v_.data(),
                                                           opt_.mask_momentum});
    return bytes;
  }

  [[nodiscard]] std::span<const float> momentum() const noexcept { return detail::view(u_); }
  [[nodiscard]] std::span<const float> accumulation() const noexcept { return detail::view(v_); }
  /// 1 where the last message sent a value.
  [[nodiscard]] std::span<const std::uint8_t> last_sent_mask() const noexcept {
    return detail::view(sent_mask_);
  }
  /// Checkpoint restore of u and v (sizes and finiteness checked; unchanged on error).
  void restore(std::span<const float> momentum, std::span<const float> accumulation) {
    for (auto saved : {momentum, accumulation}) {
      detail::require(saved.size() == u_.size(), errc::size_mismatch,
                      "saved DGC state has " + std::to_string(saved.size()) +
                          " elements, layout has " + std::to_string(u_.size()));
      for (float x : saved) {
        detail::require(std::isfinite(x), errc::non_finite_input, "saved DGC state is not finite");
      }
    }
    const policy exec{};
    detail::copy_to(exec, u_.data(), momentum.data(), momentum.size_bytes());
    detail::copy_to(exec, v_.data(), accumulation.data(), accumulation.size_bytes());
  }

private:
  using policy = detail::default_policy_t<Backend>;
  template <class T>
  using buffer = detail::buffer_t<Backend, T>;

  /// min(1, clip / ||g||), the norm from the canonical sum of squares (the same on every backend).
  template <class Exec>
  [[nodiscard]] float clip_scale(const Exec& exec, std::span<const float> grad) const {
    if (opt_.clip_norm == 0.0f || grad.empty()) {
      return 1.0f;
    }
    double sq = 0;
    (void)detail::run<detail::reduce_groups>(exec, grad.data(), grad.size(), grad.size(),
                                             math::sum_kind::square, &sq);
    const double norm = std::sqrt(sq);
    return norm > opt_.clip_norm ? static_cast<float>(opt_.clip_norm / norm) : 1.0f;
  }

  codec_for_t<Scheme> codec_;
  options opt_;
  buffer<float> u_, v_, next_u_, next_v_;
  buffer<std::uint8_t> sent_mask_;
};

} // namespace gradcomp
