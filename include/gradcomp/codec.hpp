// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "backend/cpu.hpp"
#include "compressor/common.hpp"
#include "compressor/compose.hpp"
#include "core/float16.hpp"
#include "detail/bits.hpp"
#include "detail/input_checks.hpp"
#include "detail/output_range.hpp"
#include "detail/scan.hpp"
#include "detail/sparse_selection.hpp"
#include "encoding/packed_span.hpp"
#include "encoding/raw_span.hpp"
#include "encoding/sparse_coo.hpp"
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
/// A codec reuses its workspace between calls: no allocation on the hot path once warm; one codec
/// must not be used from two threads at once.

namespace gradcomp {

template <class Scheme>
class codec {
public:
  using scheme_type = Scheme;
  using compressor_type = typename Scheme::compressor_type;
  using encoding_type = typename Scheme::encoding_type;
  using granularity_type = typename Scheme::granularity_type;
  static constexpr bool is_sparse = Scheme::is_sparse;
  static constexpr bool is_composite = Scheme::is_composite;

private:
  using sparse_span = detail::sparse_coo_span<encoding_type>;

public:
  /// Validates the scheme's parameters and plans its spans over the layout.
  codec(Scheme scheme, model_layout layout)
      : scheme_(std::move(scheme)), layout_(std::move(layout)) {
    scheme_.compressor.validate();
    plan_ = scheme_.granularity.plan(layout_, scheme_.rules);
    detail::require(plan_.size() <= 0xffffffffu, errc::invalid_parameter, "more than 2^32-1 spans");
    span_compressors_.reserve(plan_.size());
    detail::digest_builder digest;
    digest.add(scheme_.compressor.parameter_word());
    for (const span_desc& s : plan_) {
      span_compressors_.push_back(s.parameter ? scheme_.compressor.with_parameter(*s.parameter)
                                              : scheme_.compressor);
      digest.add(s.size);
      digest.add(s.compressed ? 1 : 0);
      digest.add(span_compressors_.back().parameter_word());
    }
    digest_ = digest.value();
  }

  [[nodiscard]] const Scheme& scheme() const noexcept { return scheme_; }
  /// The compressor, encoding and granularity ids every message of this codec carries.
  [[nodiscard]] scheme_ids ids() const noexcept {
    return {compressor_type::id, encoding_type::id, detail::granularity_id_of(scheme_.granularity)};
  }
  /// The compressor's name (error messages).
  [[nodiscard]] std::string_view compressor_name() const noexcept { return compressor_type::name; }
  [[nodiscard]] const model_layout& layout() const noexcept { return layout_; }
  [[nodiscard]] const std::vector<span_desc>& spans() const noexcept { return plan_; }
  /// The compressor used for span s (the scheme's, or its per-layer override).
  [[nodiscard]] const compressor_type& span_compressor(std::size_t s) const {
    return span_compressors_.at(s);
  }

  /// An upper bound on encode()'s output for gradients of type T, for any input.
  template <gradient_value T = float>
  [[nodiscard]] std::size_t max_encoded_bytes() const {
    std::size_t total = wire_header_bytes + plan_.size() * wire_directory_entry_bytes;
    for (std::size_t s = 0; s < plan_.size(); ++s) {
      const std::size_t n = plan_[s].size;
      const compressor_type& c = span_compressors_[s];
      if (!plan_[s].compressed) {
        total += n * sizeof(T);
      } else if constexpr (is_sparse) {
        total += encoding_type::bytes(n, c.max_selected(n), c.indices_implied());
      } else if constexpr (is_composite) {
        total +=
            detail::sparse_codes_span::bytes(c.quantizer, quantizer_coder(c), n, c.max_selected(n));
      } else {
        total += detail::packed_span::bytes(c, c.coder(scheme_.encoding), n);
      }
    }
    return total;
  }

  /// Compresses and encodes `grad` (the whole flat buffer) into `out`; returns the bytes written.
  /// Errors: size_mismatch, non_finite_input, value_out_of_range, buffer_too_small,
  /// invalid_parameter (key).
  template <class Exec, gradient_value T>
  std::size_t encode(const Exec& exec, std::span<const T> grad, std::span<std::byte> out,
                     const stream_key& key) {
    require_elements("gradient", grad.size());
    key.validate();
    const std::size_t total = plan_encode(exec, grad, key);
    require_room(total, out.size());
    write_message(exec, grad, out.first(total), key);
    return total;
  }

  /// The per-span scales encode() would send for `grad` (TernGrad's max, QSGD's norms, scaled
  /// sign's mean magnitude), concatenated span by span; empty for schemes without scales. Workers
  /// exchange them to share one scale (TernGrad's scaler sharing) before encoding with it.
  template <class Exec, gradient_value T>
  std::vector<float> local_scales(const Exec& exec, std::span<const T> grad,
                                  const stream_key& key) {
    require_elements("gradient", grad.size());
    key.validate();
    (void)plan_encode(exec, grad, key);
    return scales_;
  }

  /// As encode(), but with the given per-span scales (the layout of local_scales()) in place of
  /// the computed ones: every worker then quantizes on the same grid and the master can sum the
  /// codes exactly. Errors as encode(), and invalid_parameter for a wrong count or a negative or
  /// non-finite scale.
  template <class Exec, gradient_value T>
  std::size_t encode(const Exec& exec, std::span<const T> grad, std::span<std::byte> out,
                     const stream_key& key, std::span<const float> scales) {
    require_elements("gradient", grad.size());
    key.validate();
    const std::size_t total = plan_encode(exec, grad, key);
    detail::require(scales.size() == scales_.size(), errc::invalid_parameter,
                    std::to_string(scales.size()) + " shared scales given, the scheme uses " +
                        std::to_string(scales_.size()));
    if constexpr (!is_sparse) {
      for (std::size_t s = 0; s < plan_.size(); ++s) {
        for (std::size_t i = scale_offsets_[s]; i < scale_offsets_[s + 1]; ++i) {
          detail::require(scale_owner(span_compressors_[s]).valid_scale(scales[i]),
                          errc::invalid_parameter,
                          "shared scale " + std::to_string(i) + " of " + span_name(s) +
                              " is negative or not finite");
        }
      }
    }
    require_room(total, out.size());
    std::copy(scales.begin(), scales.end(), scales_.begin());
    write_message(exec, grad, out.first(total), key);
    return total;
  }

  /// Validates `message` like decode(), then sets sent[i] to 1 for every element the message
  /// carries a value for (the selected indices of a sparse span, every element of other spans)
  /// and to 0 elsewhere: the mask DGC's momentum-factor masking needs.
  template <class Exec>
  void sent_elements(const Exec& exec, std::span<const std::byte> message,
                     std::span<std::uint8_t> sent) {
    const message_info info = validate_message(exec, message, sent.size());
    for (std::size_t s = 0; s < plan_.size(); ++s) {
      const span_desc& d = plan_[s];
      std::uint8_t* dst = sent.data() + d.begin;
      if constexpr (is_sparse) {
        if (d.compressed) {
          std::fill(dst, dst + d.size, std::uint8_t{0});
          sparse_span::for_each_index(message.data() + info.spans[s].offset, regenerated(s),
                                      [dst](std::size_t i) { dst[i] = 1; });
          continue;
        }
      }
      std::fill(dst, dst + d.size, std::uint8_t{1});
    }
  }

  /// Validates `message` completely, then writes the decompressed gradient into `out` (the whole
  /// flat buffer). Errors: any errc of the wire format; out is untouched on error.
  template <class Exec, gradient_value T>
  void decode(const Exec& exec, std::span<const std::byte> message, std::span<T> out) {
    decode_impl(exec, message, out, detail::decode_mode::assign);
  }
  /// As decode(), but adds the decompressed gradient to what `out` holds (aggregation).
  template <class Exec, gradient_value T>
  void decode_add(const Exec& exec, std::span<const std::byte> message, std::span<T> out) {
    decode_impl(exec, message, out, detail::decode_mode::add);
  }

  /// Q(grad) as a dense buffer: encode into the codec's own buffer, then decode into out.
  template <class Exec, gradient_value T>
  std::size_t apply(const Exec& exec, std::span<const T> grad, std::span<T> out,
                    const stream_key& key) {
    require_elements("output", out.size());
    message_.resize(max_encoded_bytes<T>());
    const std::size_t bytes = encode(exec, grad, std::span<std::byte>(message_), key);
    decode(exec, std::span<const std::byte>(message_.data(), bytes), out);
    return bytes;
  }

  /// The digest of the plan (compressor parameters, span sizes, rules) that messages carry.
  [[nodiscard]] std::uint64_t plan_digest() const noexcept { return digest_; }

  /// Throws the frame-level error (scheme_mismatch, layout_mismatch) of a parsed message that
  /// this codec did not write, or whose plan differs.
  void check_frame(const message_info& info) const {
    detail::check_frame_matches(info, compressor_type::id, encoding_type::id, ids().granularity,
                                layout_.total_size(), plan_, digest_,
                                [&](std::size_t s) { return span_name(s); });
  }

  /// "layer 'name' (span s)" or "span s": how error messages name a span.
  [[nodiscard]] std::string span_name(std::size_t s) const {
    const span_desc& d = plan_[s];
    return d.layer != span_desc::no_layer
               ? "layer '" + layout_[d.layer].name + "' (span " + std::to_string(s) + ")"
               : "span " + std::to_string(s);
  }

private:
  template <class T>
  void require_finite(std::uint32_t max_bits, const T* x, std::size_t s) const {
    detail::require_finite(max_bits, x, plan_[s].size, plan_[s].begin,
                           [&] { return span_name(s); });
  }
  void require_elements(const char* what, std::size_t n) const {
    detail::require(n == layout_.total_size(), errc::size_mismatch,
                    std::string(what) + " has " + std::to_string(n) + " elements, layout has " +
                        std::to_string(layout_.total_size()));
  }
  static void require_room(std::size_t needed, std::size_t have) {
    detail::require(have >= needed, errc::buffer_too_small,
                    "message needs " + std::to_string(needed) + " bytes, output has " +
                        std::to_string(have) + " (size it with max_encoded_bytes())");
  }
  [[nodiscard]] span_context context(std::size_t s, const stream_key& key,
                                     std::uint32_t max_bits) const {
    return {plan_[s].begin, key.seed, key.stream_word(), max_bits};
  }

  // Phase 1: scan every span; fills the workspace and returns the message size.
  template <class Exec, class T>
  std::size_t plan_encode(const Exec& exec, std::span<const T> grad, const stream_key& key) {
    const std::size_t S = plan_.size();
    span_bytes_.assign(S, 0);
    scale_offsets_.assign(S + 1, 0);
    sel_offsets_.assign(S + 1, 0);
    selections_.assign(S, sparse_selection{});
    sel_indices_.clear();
    scales_.clear();
    std::size_t total = wire_header_bytes + S * wire_directory_entry_bytes;
    for (std::size_t s = 0; s < S; ++s) {
      const span_desc& d = plan_[s];
      const T* x = grad.data() + d.begin;
      const compressor_type& c = span_compressors_[s];
      scale_offsets_[s + 1] = scale_offsets_[s];
      if (!d.compressed) {
        require_finite(detail::scan_max_abs(exec, x, d.size), x, s);
        span_bytes_[s] = d.size * sizeof(T);
      } else if constexpr (is_sparse) {
        const std::uint32_t mb = detail::scan_max_abs(exec, x, d.size);
        require_finite(mb, x, s);
        selections_[s] = detail::select_sparse(exec, c, x, d.size, context(s, key, mb), sparse_ws_);
        sparse_span::require_values_fit(x, sparse_ws_.indices.data(), sparse_ws_.indices.size(),
                                        selections_[s].value_scale, [&] { return span_name(s); });
        sel_indices_.insert(sel_indices_.end(), sparse_ws_.indices.begin(),
                            sparse_ws_.indices.end());
        span_bytes_[s] =
            encoding_type::bytes(d.size, sparse_ws_.indices.size(), selections_[s].indices_implied);
      } else if constexpr (is_composite) {
        span_bytes_[s] = plan_composite_span(exec, x, s, key);
      } else {
        scale_offsets_[s + 1] = scale_offsets_[s] + c.num_scales(d.size);
        scales_.resize(scale_offsets_[s + 1]);
        const std::uint32_t mb = c.scan(exec, x, d.size, scales_.data() + scale_offsets_[s], sums_);
        require_finite(mb, x, s);
        using coder_type = decltype(c.coder(scheme_.encoding));
        if constexpr (requires { coder_type::overflow_abs_bits; }) {
          detail::require_in_range(mb, coder_type::overflow_abs_bits, x,
                                   [&] { return span_name(s); });
        }
        span_bytes_[s] = detail::packed_span::bytes(c, c.coder(scheme_.encoding), d.size);
      }
      sel_offsets_[s + 1] = sel_indices_.size();
      total += span_bytes_[s];
    }
    return total;
  }

  // Phase 2: write header, directory and payloads, then the checksum.
  template <class Exec, class T>
  void write_message(const Exec& exec, std::span<const T> grad, std::span<std::byte> out,
                     const stream_key& key) {
    const std::size_t S = plan_.size();
    std::byte* p = out.data();
    detail::write_frame_header(p, compressor_type::id, encoding_type::id, ids().granularity,
                               value_traits<T>::id, static_cast<std::uint32_t>(S),
                               layout_.total_size(), key.seed, key.stream_word(), digest_);
    std::size_t offset = wire_header_bytes + S * wire_directory_entry_bytes;
    for (std::size_t s = 0; s < S; ++s) {
      const span_desc& d = plan_[s];
      detail::write_directory_entry(p + wire_header_bytes + s * wire_directory_entry_bytes, d.size,
                                    span_bytes_[s],
                                    d.compressed ? span_mode_compressed : span_mode_raw);
      std::byte* dst = p + offset;
      const T* x = grad.data() + d.begin;
      const compressor_type& c = span_compressors_[s];
      if (!d.compressed) {
        detail::raw_span::write(dst, x, d.size);
      } else if constexpr (is_sparse) {
        sparse_span::write(dst, x, d.size, sel_indices_.data() + sel_offsets_[s],
                           sel_offsets_[s + 1] - sel_offsets_[s], selections_[s].indices_implied,
                           selections_[s].value_scale);
      } else if constexpr (is_composite) {
        const std::size_t k = sel_offsets_[s + 1] - sel_offsets_[s];
        detail::sparse_codes_span::write(
            exec, c.quantizer, quantizer_coder(c), sel_indices_.data() + sel_offsets_[s],
            kept_.data() + sel_offsets_[s], k, d.size, d.begin, scales_.data() + scale_offsets_[s],
            context(s, key, 0).rounding(), dst);
      } else {
        const span_context ctx = context(s, key, 0);
        detail::packed_span::write(exec, c, c.coder(scheme_.encoding), x, d.size, d.begin,
                                   scales_.data() + scale_offsets_[s], ctx.rounding(), dst);
      }
      offset += span_bytes_[s];
    }
    detail::seal_message(out);
  }

  // ---- compositions (compressor/compose.hpp) -------------------------------------------------

  [[nodiscard]] auto quantizer_coder(const compressor_type& c) const {
    return c.quantizer.coder(scheme_.encoding.codes);
  }
  /// The compressor whose scales a span carries: the quantizer of a composition.
  [[nodiscard]] static const auto& scale_owner(const compressor_type& c) {
    if constexpr (is_composite) {
      return c.quantizer;
    } else {
      return c;
    }
  }

  // Phase 1 of a composite span: S selects, the kept values (times S's value scale) are
  // gathered, Q scans them for its scales. Returns the span's bytes.
  template <class Exec, class T>
  std::size_t plan_composite_span(const Exec& exec, const T* x, std::size_t s,
                                  const stream_key& key) {
    const span_desc& d = plan_[s];
    const compressor_type& c = span_compressors_[s];
    const std::uint32_t mb = detail::scan_max_abs(exec, x, d.size);
    require_finite(mb, x, s);
    const sparse_selection sel =
        detail::select_sparse(exec, c.sparsifier, x, d.size, context(s, key, mb), sparse_ws_);
    const std::size_t k = sparse_ws_.indices.size();
    sel_indices_.insert(sel_indices_.end(), sparse_ws_.indices.begin(), sparse_ws_.indices.end());
    kept_.resize(sel_indices_.size());
    float* kept = kept_.data() + (sel_indices_.size() - k);
    for (std::size_t j = 0; j < k; ++j) {
      kept[j] = to_float(x[sparse_ws_.indices[j]]) * sel.value_scale;
    }
    const std::size_t ns = c.quantizer.num_scales(k);
    scale_offsets_[s + 1] = scale_offsets_[s] + ns;
    scales_.resize(scale_offsets_[s + 1]);
    const std::uint32_t kept_bits =
        c.quantizer.scan(exec, kept, k, scales_.data() + scale_offsets_[s], sums_);
    detail::require(kept_bits < detail::inf_abs_bits, errc::value_out_of_range, [&] {
      return span_name(s) + ": a kept value times the sparsifier's scale overflows";
    });
    return detail::sparse_codes_span::bytes(c.quantizer, quantizer_coder(c), d.size, k);
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
      check_output_range(exec, msg, info, std::span<const T>(out), mode);
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
    const compressor_type& c = span_compressors_[s];
    if (!d.compressed) {
      detail::raw_span::decode(src, info.value_type, d.size, mode, dst);
    } else if constexpr (is_sparse) {
      sparse_span::decode(src, d.size, regenerated(s), mode, dst);
    } else if constexpr (is_composite) {
      kept_.resize(d.size);
      detail::sparse_codes_span::decode(exec, c.quantizer, quantizer_coder(c), src, d.size,
                                        scales_.data() + scale_offsets_[s], mode, kept_.data(),
                                        dst);
    } else {
      detail::packed_span::decode(exec, c, c.coder(scheme_.encoding), src, d.size,
                                  scales_.data() + scale_offsets_[s], mode, dst);
    }
  }

  /// Before a decode into T writes anything: every decoded value (or, for decode_add, its fp32
  /// sum with what out holds) must be finite in T. The magnitudes measured while validating,
  /// and max |out| for a sum, settle almost every span; a span they cannot settle is decoded
  /// into a scratch buffer and checked element by element. Errors: value_out_of_range naming
  /// the span and element (an element of out that is already NaN or Inf is not the message's
  /// doing and is let through).
  template <class Exec, class T>
  void check_output_range(const Exec& exec, std::span<const std::byte> msg,
                          const message_info& info, std::span<const T> out,
                          detail::decode_mode mode) {
    const bool add = mode == detail::decode_mode::add;
    for (std::size_t s = 0; s < plan_.size(); ++s) {
      const span_desc& d = plan_[s];
      const T* held = out.data() + d.begin;
      const std::uint32_t held_bits = add ? detail::scan_max_abs(exec, held, d.size) : 0;
      if (detail::surely_fits<T>(decoded_max_[s], held_bits)) {
        continue;
      }
      range_scratch_.resize(d.size);
      decode_span(exec, msg, info, s, detail::decode_mode::assign, range_scratch_.data());
      detail::require_writes_fit(held, range_scratch_.data(), d.size, add,
                                 [&] { return span_name(s); });
    }
  }

  // Phase 1 of every decode: the frame, the output size, and every span (regenerating implied
  // indices) are validated before anything is written. With `measure`, decoded_max_[s] is the
  // largest |decoded value| of span s (fp32 bits).
  template <class Exec>
  message_info validate_message(const Exec& exec, std::span<const std::byte> msg,
                                std::size_t out_size, bool measure = false) {
    message_info info = detail::parse_frame(msg);
    check_frame(info);
    require_elements("output", out_size);
    const std::size_t S = plan_.size();
    scale_offsets_.assign(S + 1, 0);
    sel_offsets_.assign(S + 1, 0);
    decoded_max_.assign(S, 0);
    sel_indices_.clear();
    for (std::size_t s = 0; s < S; ++s) {
      validate_span(exec, info, msg.data() + info.spans[s].offset, s,
                    measure ? &decoded_max_[s] : nullptr);
      sel_offsets_[s + 1] = sel_indices_.size();
    }
    return info;
  }

  template <class Exec>
  void validate_span(const Exec& exec, const message_info& info, const std::byte* src,
                     std::size_t s, std::uint32_t* max_abs_bits) {
    const span_desc& d = plan_[s];
    const std::size_t bytes = info.spans[s].bytes;
    const compressor_type& c = span_compressors_[s];
    auto where = [&] { return span_name(s) + ": "; };
    if (!d.compressed) {
      const std::uint32_t max_bits =
          detail::raw_span::validate(src, bytes, info.value_type, d.size, where);
      if (max_abs_bits != nullptr) {
        *max_abs_bits = max_bits;
      }
      scale_offsets_[s + 1] = scale_offsets_[s];
    } else if constexpr (is_sparse) {
      const std::uint32_t max_bits = sparse_span::validate(c, src, bytes, d.size, where);
      if (detail::sparse_span_header::read(src).implied()) {
        regenerate_indices(exec, info, s);
      }
      if (max_abs_bits != nullptr) {
        *max_abs_bits = max_bits;
      }
      scale_offsets_[s + 1] = scale_offsets_[s];
    } else if constexpr (is_composite) {
      // room for the most scales any k <= n needs; trimmed to the count once k is known
      scales_.resize(scale_offsets_[s] + c.quantizer.num_scales(d.size));
      const std::size_t k = detail::sparse_codes_span::validate(
          exec, c, quantizer_coder(c), src, bytes, d.size, s, scales_.data() + scale_offsets_[s],
          where, max_abs_bits);
      scale_offsets_[s + 1] = scale_offsets_[s] + c.quantizer.num_scales(k);
      scales_.resize(scale_offsets_[s + 1]);
    } else {
      const std::size_t ns = c.num_scales(d.size);
      scale_offsets_[s + 1] = scale_offsets_[s] + ns;
      scales_.resize(scale_offsets_[s + 1]);
      detail::packed_span::validate(exec, c, c.coder(scheme_.encoding), src, bytes, d.size, s,
                                    scales_.data() + scale_offsets_[s], max_abs_bits);
    }
  }

  /// Regenerates the implied indices of sparse span s (shared-seed random-k) from the message's
  /// seed and stream word, as the sender selected them.
  template <class Exec>
  void regenerate_indices(const Exec& exec, const message_info& info, std::size_t s) {
    const span_context ctx{plan_[s].begin, info.seed, info.stream_word, 0};
    (void)detail::select_sparse(exec, span_compressors_[s], static_cast<const float*>(nullptr),
                                plan_[s].size, ctx, sparse_ws_);
    sel_indices_.insert(sel_indices_.end(), sparse_ws_.indices.begin(), sparse_ws_.indices.end());
  }
  /// The regenerated indices of span s of the last validated message (implied spans only).
  [[nodiscard]] const std::size_t* regenerated(std::size_t s) const noexcept {
    return sel_indices_.data() + sel_offsets_[s];
  }

  std::vector<float> kept_; ///< composite spans: kept values (encode), decoded values (decode)
  Scheme scheme_;
  model_layout layout_;
  std::vector<span_desc> plan_;
  std::vector<compressor_type> span_compressors_;
  std::uint64_t digest_ = 0;
  // workspace, reused between calls
  std::vector<std::size_t> span_bytes_;
  std::vector<float> scales_;
  std::vector<std::size_t> scale_offsets_;
  std::vector<sparse_selection> selections_;
  std::vector<std::size_t> sel_indices_;
  std::vector<std::size_t> sel_offsets_;
  std::vector<std::uint32_t> decoded_max_; ///< per span: largest |decoded value| (fp32 bits)
  std::vector<float> range_scratch_;       ///< a span decoded to check it element by element
  sparse_workspace sparse_ws_;
  std::vector<double> sums_;
  std::vector<std::byte> message_;
};

/// Convenience: make_codec(scheme, layout).
template <class Scheme>
codec<Scheme> make_codec(Scheme scheme, model_layout layout) {
  return codec<Scheme>(std::move(scheme), std::move(layout));
}

} // namespace gradcomp
