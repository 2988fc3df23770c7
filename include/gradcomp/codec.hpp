// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "backend/cpu.hpp"
#include "compressor/common.hpp"
#include "compressor/compose.hpp"
#include "core/float16.hpp"
#include "detail/bits.hpp"
#include "detail/codec_plan.hpp"
#include "detail/codec_workspace.hpp"
#include "detail/dispatch.hpp"
#include "detail/engine_slot.hpp"
#include "detail/input_checks.hpp"
#include "detail/output_range.hpp"
#include "detail/scan.hpp"
#include "detail/span_coder.hpp"
#include "encoding/raw_span.hpp"
#include "encoding/wire_header.hpp"
#include "error.hpp"
#include "layout/model_layout.hpp"
#include "random/stream_key.hpp"
#include "scheme.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

/// @file
/// codec<Scheme>: binds a scheme to a model layout and turns gradients into wire messages and
/// back. Encoding is two-phase: every span is first scanned (scales, selections, the non-finite
/// check) into the codec's workspace, then, only if all spans succeed and the output is large
/// enough, the message is written. Decoding validates the whole message before it writes a single
/// output element. So a failing call leaves the caller's buffers untouched (failure atomicity).
/// A codec reuses its workspace between calls: once warm, no buffer that grows with the gradient
/// is allocated (small bookkeeping remains); one codec must not be used from two threads at once.
/// The backend is the policy at the call: `cpu` (or cpu_threads(n)) on host buffers,
/// cuda_policy{stream} on device buffers (<gradcomp/cuda.cuh>), with the same bytes; the CUDA
/// backend builds its device tables on the codec's first CUDA call.

namespace gradcomp {

template <class Scheme>
class codec : public detail::codec_plan<Scheme> {
  using base = detail::codec_plan<Scheme>;
  using base::digest_, base::layout_, base::plan_, base::scheme_, base::span_compressors_;
  using span_coder = detail::span_coder_for<Scheme>;

public:
  using base::ids, base::span_name, base::check_frame;
  using typename base::compressor_type, typename base::encoding_type;

public:
  /// Validates the scheme's parameters and plans its spans over the layout.
  codec(Scheme scheme, model_layout layout) : base(std::move(scheme), std::move(layout)) {}

  /// Compresses and encodes `grad` (the whole flat buffer) into `out`; returns the bytes written.
  /// Errors: size_mismatch, non_finite_input, value_out_of_range, buffer_too_small,
  /// invalid_parameter (key).
  template <class Exec, gradient_value T>
  std::size_t encode(const Exec& exec, std::span<const T> grad, std::span<std::byte> out,
                     const stream_key& key) {
    if constexpr (detail::offloaded_v<Exec>) {
      return engine<Exec>().encode(exec, grad, out, key);
    } else {
      return encode_impl(exec, grad, out, key, nullptr);
    }
  }

  /// The per-span scales encode() would send for `grad` (TernGrad's max, QSGD's norms, scaled
  /// sign's mean magnitude), concatenated span by span; empty for schemes without scales. Workers
  /// exchange them to share one scale (TernGrad's scaler sharing) before encoding with it.
  /// Under cuda_policy: a device gradient, the scales returned to the host.
  template <class Exec, gradient_value T>
  std::vector<float> local_scales(const Exec& exec, std::span<const T> grad,
                                  const stream_key& key) {
    if constexpr (detail::offloaded_v<Exec>) {
      return engine<Exec>().local_scales(exec, grad, key);
    } else {
      (void)plan_encode(exec, grad, key);
      return ws_.scales;
    }
  }

  /// As encode(), but with the given per-span scales (the layout of local_scales()) in place of
  /// the computed ones: every worker then quantizes on the same grid and the master can sum the
  /// codes exactly. Errors as encode(), and invalid_parameter for a wrong count or a negative or
  /// non-finite scale.
  template <class Exec, gradient_value T>
  std::size_t encode(const Exec& exec, std::span<const T> grad, std::span<std::byte> out,
                     const stream_key& key, std::span<const float> scales) {
    if constexpr (detail::offloaded_v<Exec>) {
      return engine<Exec>().encode(exec, grad, out, key, &scales);
    } else {
      return encode_impl(exec, grad, out, key, &scales);
    }
  }

  /// Validates `message` like decode(), then sets sent[i] to 1 for every element the message
  /// carries a value for (the selected indices of a sparse or composite span, every element of
  /// other spans) and to 0 elsewhere: the mask DGC's momentum-factor masking needs. Under
  /// cuda_policy: message and mask in device memory.
  template <class Exec>
  void sent_elements(const Exec& exec, std::span<const std::byte> message,
                     std::span<std::uint8_t> sent) {
    if constexpr (detail::offloaded_v<Exec>) {
      engine<Exec>().sent_elements(exec, message, sent);
    } else {
      const message_info info = validate_message(exec, message, sent.size());
      for (std::size_t s = 0; s < plan_.size(); ++s) {
        const span_desc& d = plan_[s];
        std::uint8_t* dst = sent.data() + d.begin;
        if (d.compressed) {
          coder().mark_sent(message.data() + info.spans[s].offset, d.size, ws_, s, dst);
        } else {
          std::fill(dst, dst + d.size, std::uint8_t{1});
        }
      }
    }
  }

  /// Validates `message` completely (frame, every span) as decode() does, and writes nothing: a
  /// receiver that takes the codes by other means (framework/level_sums.hpp) checks it this way.
  /// Host messages (the CPU policy).
  void validate(const cpu_policy& exec, std::span<const std::byte> message) {
    (void)validate_message(exec, message, layout_.total_size());
  }

  /// Validates `message` completely, then writes the decompressed gradient into `out` (the whole
  /// flat buffer). Errors: any errc of the wire format; out is untouched on error.
  template <class Exec, gradient_value T>
  void decode(const Exec& exec, std::span<const std::byte> message, std::span<T> out) {
    if constexpr (detail::offloaded_v<Exec>) {
      engine<Exec>().decode(exec, message, out);
    } else {
      decode_impl(exec, message, out, detail::decode_mode::assign);
    }
  }
  /// As decode(), but adds the decompressed gradient to what `out` holds (aggregation).
  template <class Exec, gradient_value T>
  void decode_add(const Exec& exec, std::span<const std::byte> message, std::span<T> out) {
    if constexpr (detail::offloaded_v<Exec>) {
      engine<Exec>().decode_add(exec, message, out);
    } else {
      decode_impl(exec, message, out, detail::decode_mode::add);
    }
  }

  /// Q(grad) as a dense buffer: encode into the codec's own buffer, then decode into out.
  template <class Exec, gradient_value T>
  std::size_t apply(const Exec& exec, std::span<const T> grad, std::span<T> out,
                    const stream_key& key) {
    detail::require_elements("output", out.size(), layout_.total_size());
    if constexpr (detail::offloaded_v<Exec>) {
      return engine<Exec>().apply(exec, grad, out, key);
    } else {
      message_.resize(this->template max_encoded_bytes<T>());
      const std::size_t bytes = encode(exec, grad, std::span<std::byte>(message_), key);
      decode(exec, std::span<const std::byte>(message_.data(), bytes), out);
      return bytes;
    }
  }

private:
  template <class>
  friend struct detail::codec_offload;
  /// The state of an offloading backend (CUDA), built on its first call.
  template <class Exec>
  auto& engine() {
    return detail::codec_offload<typename Exec::backend_tag>::engine(*this);
  }
  [[nodiscard]] span_coder coder() const noexcept { return base::coder(); }
  /// The summed checksum digests of blocks [first, end) of a host message, on exec's backend.
  template <class Exec>
  static auto checksum_blocks_on(const Exec& exec, std::span<const std::byte> msg) {
    return [&exec, msg](std::uint64_t first, std::uint64_t end) {
      return detail::run<detail::sum_checksum_blocks>(exec, msg.data(), msg.size(), first, end);
    };
  }
  [[nodiscard]] span_context context(std::size_t s, const stream_key& key) const {
    return {plan_[s].begin, key.seed, key.stream_word(), 0};
  }

  template <class Exec, class T>
  std::size_t encode_impl(const Exec& exec, std::span<const T> grad, std::span<std::byte> out,
                          const stream_key& key, const std::span<const float>* shared_scales) {
    const std::size_t total = plan_encode(exec, grad, key);
    if (shared_scales != nullptr) {
      ws_.take_shared_scales(
          *shared_scales,
          [&](std::size_t s, float v) { return coder().valid_scale(span_compressors_[s], v); },
          [&](std::size_t s) { return span_name(s); });
    }
    detail::require_room(total, out.size());
    write_message(exec, grad, out.first(total), key);
    return total;
  }

  // Phase 1: checks the call, scans every span; fills the workspace, returns the message size.
  template <class Exec, class T>
  std::size_t plan_encode(const Exec& exec, std::span<const T> grad, const stream_key& key) {
    detail::require_elements("gradient", grad.size(), layout_.total_size());
    key.validate();
    const std::size_t S = plan_.size();
    span_bytes_.assign(S, 0);
    ws_.begin(S);
    std::size_t total = wire_header_bytes + S * wire_directory_entry_bytes;
    for (std::size_t s = 0; s < S; ++s) {
      const span_desc& d = plan_[s];
      const T* x = grad.data() + d.begin;
      auto name = [&] { return span_name(s); };
      if (d.compressed) {
        span_bytes_[s] =
            coder().plan(exec, span_compressors_[s], x, d.size, context(s, key), ws_, name);
      } else {
        detail::require_finite(detail::scan_max_abs(exec, x, d.size), x, d.size, d.begin, name);
        span_bytes_[s] = d.size * sizeof(T);
      }
      ws_.end_span();
      total += span_bytes_[s];
    }
    return total;
  }

  // Phase 2: header, directory and payloads, then the checksum (blocks hashed as written).
  template <class Exec, class T>
  void write_message(const Exec& exec, std::span<const T> grad, std::span<std::byte> out,
                     const stream_key& key) {
    const std::size_t S = plan_.size();
    std::byte* p = out.data();
    detail::write_frame_header(p, compressor_type::id, encoding_type::id, ids().granularity,
                               value_traits<T>::id, static_cast<std::uint32_t>(S),
                               layout_.total_size(), key.seed, key.stream_word(), digest_);
    std::size_t offset = wire_header_bytes + S * wire_directory_entry_bytes;
    ws_.hashed.begin(out);
    for (std::size_t s = 0; s < S; ++s) {
      const span_desc& d = plan_[s];
      detail::write_directory_entry(p + wire_header_bytes + s * wire_directory_entry_bytes, d.size,
                                    span_bytes_[s],
                                    d.compressed ? span_mode_compressed : span_mode_raw);
      const T* x = grad.data() + d.begin;
      if (d.compressed) {
        coder().write(exec, span_compressors_[s], x, d.size, context(s, key), ws_, s, p + offset);
      } else {
        detail::raw_span::write(p + offset, x, d.size);
      }
      offset += span_bytes_[s];
    }
    detail::seal_message(out, ws_.hashed, checksum_blocks_on(exec, out));
  }

  // ---- decoding ----------------------------------------------------------------------------

  template <class Exec, class T>
  void decode_impl(const Exec& exec, std::span<const std::byte> msg, std::span<T> out,
                   detail::decode_mode mode) {
    // the magnitudes are needed where a finite decoded value may not fit the output: a 16-bit
    // output type, or a sum with what out holds
    const bool measure = !std::is_same_v<T, float> || mode == detail::decode_mode::add;
    const message_info info = validate_message(exec, msg, out.size(), measure);
    if (measure) {
      detail::check_output_range(
          exec, plan_, decoded_max_, std::span<const T>(out), mode == detail::decode_mode::add,
          range_scratch_,
          [&](std::size_t s, float* dst) {
            decode_span(exec, msg, info, s, detail::decode_mode::assign, dst);
          },
          [&](std::size_t s) { return span_name(s); });
    }
    for (std::size_t s = 0; s < plan_.size(); ++s) {
      decode_span(exec, msg, info, s, mode, out.data() + plan_[s].begin);
    }
  }

  /// Writes span s of a validated message into dst (the span's first element).
  template <class Exec, class T>
  void decode_span(const Exec& exec, std::span<const std::byte> msg, const message_info& info,
                   std::size_t s, detail::decode_mode mode, T* dst) {
    const span_desc& d = plan_[s];
    const std::byte* src = msg.data() + info.spans[s].offset;
    if (d.compressed) {
      coder().decode(exec, span_compressors_[s], src, d.size, ws_, s, mode, dst);
    } else {
      detail::raw_span::decode(src, info.value_type, d.size, mode, dst);
    }
  }

  // Phase 1 of every decode: frame, output size, every span (implied indices regenerated) and
  // checksum (blocks hashed as the spans are read) are checked before anything is written. With
  // `measure`, decoded_max_[s] is the largest |decoded value| of span s (fp32 bits).
  template <class Exec>
  message_info validate_message(const Exec& exec, std::span<const std::byte> msg,
                                std::size_t out_size, bool measure = false) {
    const std::size_t S = plan_.size();
    return detail::parse_frame_validated(
        msg, ws_.hashed, checksum_blocks_on(exec, msg), [&](const message_info& info) {
          check_frame(info);
          detail::require_elements("output", out_size, layout_.total_size());
          ws_.begin(S);
          decoded_max_.assign(S, 0);
          for (std::size_t s = 0; s < S; ++s) {
            validate_span(exec, info, msg.data() + info.spans[s].offset, s,
                          measure ? &decoded_max_[s] : nullptr);
            ws_.end_span();
          }
        });
  }

  template <class Exec>
  void validate_span(const Exec& exec, const message_info& info, const std::byte* src,
                     std::size_t s, std::uint32_t* max_abs_bits) {
    const span_desc& d = plan_[s];
    const std::size_t bytes = info.spans[s].bytes;
    auto where = [&] { return span_name(s) + ": "; };
    if (d.compressed) {
      // the message's seed and stream word: implied indices are regenerated as the sender drew
      const span_context ctx{d.begin, info.seed, info.stream_word, 0};
      coder().validate(exec, span_compressors_[s], src, bytes, d.size, ctx, ws_, s, where,
                       max_abs_bits);
      return;
    }
    const std::uint32_t max_bits =
        detail::raw_span::validate(src, bytes, info.value_type, d.size, where);
    if (max_abs_bits != nullptr) {
      *max_abs_bits = max_bits;
    }
  }

  // workspace, reused between calls
  detail::codec_workspace ws_;
  std::vector<std::size_t> span_bytes_;
  std::vector<std::uint32_t> decoded_max_; ///< per span: largest |decoded value| (fp32 bits)
  std::vector<float> range_scratch_;       ///< a span decoded to check it element by element
  std::vector<std::byte> message_;
  detail::engine_slot engine_; ///< an offloading backend's state (last: built from the rest)
};

/// Convenience: make_codec(scheme, layout).
template <class Scheme>
codec<Scheme> make_codec(Scheme scheme, model_layout layout) {
  return codec<Scheme>(std::move(scheme), std::move(layout));
}

} // namespace gradcomp
