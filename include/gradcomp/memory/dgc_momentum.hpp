// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../codec.hpp"
#include "../detail/rounding_barrier.hpp"
#include "../error.hpp"
#include "../layout/model_layout.hpp"
#include "../random/stream_key.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
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

namespace gradcomp {

template <class Scheme>
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
      : codec_(std::move(scheme), std::move(layout)), opt_(opt),
        u_(codec_.layout().total_size(), 0.0f), v_(u_.size(), 0.0f), next_u_(u_.size()),
        next_v_(u_.size()), sent_mask_(u_.size()) {
    detail::require(std::isfinite(opt.momentum) && opt.momentum >= 0.0f && opt.momentum < 1.0f,
                    errc::invalid_parameter,
                    "dgc momentum must be in [0, 1), got " + std::to_string(opt.momentum));
    detail::require(std::isfinite(opt.clip_norm) && opt.clip_norm >= 0.0f, errc::invalid_parameter,
                    "dgc clip_norm must be finite and >= 0, got " + std::to_string(opt.clip_norm));
  }

  [[nodiscard]] gradcomp::codec<Scheme>& codec() noexcept { return codec_; }
  [[nodiscard]] std::size_t max_encoded_bytes() const {
    return codec_.template max_encoded_bytes<float>();
  }

  /// One DGC step on `grad`: updates u and v, encodes C(v) into out, masks. Returns the bytes.
  template <class Exec>
  std::size_t encode(const Exec& exec, std::span<const float> grad, std::span<std::byte> out,
                     const stream_key& key) {
    detail::require(grad.size() == u_.size(), errc::size_mismatch,
                    "gradient has " + std::to_string(grad.size()) + " elements, layout has " +
                        std::to_string(u_.size()));
    const float g_scale = clip_scale(grad);
    const detail::rounding_barrier keep; // both products rounded, as without FMA hardware
    for (std::size_t i = 0; i < u_.size(); ++i) {
      next_u_[i] = keep(opt_.momentum * u_[i]) + keep(grad[i] * g_scale);
      next_v_[i] = v_[i] + next_u_[i];
    }
    const std::size_t bytes = codec_.encode(exec, std::span<const float>(next_v_), out, key);
    codec_.sent_elements(exec, std::span<const std::byte>(out.data(), bytes),
                         std::span<std::uint8_t>(sent_mask_));
    for (std::size_t i = 0; i < u_.size(); ++i) {
      const bool sent = sent_mask_[i] != 0;
      v_[i] = sent ? 0.0f : next_v_[i];
      u_[i] = sent && opt_.mask_momentum ? 0.0f : next_u_[i];
    }
    return bytes;
  }

  [[nodiscard]] std::span<const float> momentum() const noexcept { return u_; }
  [[nodiscard]] std::span<const float> accumulation() const noexcept { return v_; }
  /// 1 where the last message sent a value.
  [[nodiscard]] std::span<const std::uint8_t> last_sent_mask() const noexcept { return sent_mask_; }
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
    u_.assign(momentum.begin(), momentum.end());
    v_.assign(accumulation.begin(), accumulation.end());
  }

private:
  [[nodiscard]] float clip_scale(std::span<const float> grad) const {
    if (opt_.clip_norm == 0.0f) {
      return 1.0f;
    }
    double sq = 0;
    for (float x : grad) {
      sq += static_cast<double>(x) * x;
    }
    const double norm = std::sqrt(sq);
    return norm > opt_.clip_norm ? static_cast<float>(opt_.clip_norm / norm) : 1.0f;
  }

  gradcomp::codec<Scheme> codec_;
  options opt_;
  std::vector<float> u_, v_, next_u_, next_v_;
  std::vector<std::uint8_t> sent_mask_;
};

} // namespace gradcomp
