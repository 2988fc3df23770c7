// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "backend/cpu/codes.hpp"
#include "backend/cpu/reduce_groups.hpp"
#include "backend/cpu/select_top_keys.hpp"
#include "compressor/common.hpp"
#include "compressor/compose.hpp"
#include "core/float16.hpp"
#include "detail/bits.hpp"
#include "detail/output_range.hpp"
#include "detail/rounding_barrier.hpp"
#include "detail/scan.hpp"
#include "encoding/packed_span.hpp"
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
        bool implied = false; // shared-seed random-k: receivers regenerate the indices
        if constexpr (requires { c.shared_seed; }) {
          implied = c.shared_seed;
        }
        total += encoding_type::bytes(n, c.max_selected(n), implied);
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
    detail::require(grad.size() == layout_.total_size(), errc::size_mismatch,
                    "gradient has " + std::to_string(grad.size()) + " elements, layout has " +
                        std::to_string(layout_.total_size()));
    key.validate();
    const std::size_t total = plan_encode(exec, grad, key);
    detail::require(out.size() >= total, errc::buffer_too_small,
                    "message needs " + std::to_string(total) + " bytes, output has " +
                        std::to_string(out.size()) + " (size it with max_encoded_bytes())");
    write_message(exec, grad, out.first(total), key);
    return total;
  }

  /// The per-span scales encode() would send for `grad` (TernGrad's max, QSGD's norms, scaled
  /// sign's mean magnitude), concatenated span by span; empty for schemes without scales. Workers
  /// exchange them to share one scale (TernGrad's scaler sharing) before encoding with it.
  template <class Exec, gradient_value T>
  std::vector<float> local_scales(const Exec& exec, std::span<const T> grad,
                                  const stream_key& key) {
    detail::require(grad.size() == layout_.total_size(), errc::size_mismatch,
                    "gradient has " + std::to_string(grad.size()) + " elements, layout has " +
                        std::to_string(layout_.total_size()));
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
    detail::require(grad.size() == layout_.total_size(), errc::size_mismatch,
                    "gradient has " + std::to_string(grad.size()) + " elements, layout has " +
                        std::to_string(layout_.total_size()));
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
    detail::require(out.size() >= total, errc::buffer_too_small,
                    "message needs " + std::to_string(total) + " bytes, output has " +
                        std::to_string(out.size()) + " (size it with max_encoded_bytes())");
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
          for_each_sparse_index(message.data() + info.spans[s].offset, d.size, s,
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
    detail::require(out.size() == layout_.total_size(), errc::size_mismatch,
                    "output has " + std::to_string(out.size()) + " elements, layout has " +
                        std::to_string(layout_.total_size()));
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
    auto mismatch = [](const char* what, auto got, auto want) {
      detail::fail(errc::scheme_mismatch,
                   std::string("message ") + what + " id " + std::to_string(static_cast<int>(got)) +
                       ", this codec expects " + std::to_string(static_cast<int>(want)));
    };
    if (info.compressor != compressor_type::id) {
      mismatch("compressor", info.compressor, compressor_type::id);
    }
    if (info.encoding != encoding_type::id) {
      mismatch("encoding", info.encoding, encoding_type::id);
    }
    if (info.granularity != ids().granularity) {
      mismatch("granularity", info.granularity, ids().granularity);
    }
    detail::require(info.total_elements == layout_.total_size(), errc::layout_mismatch,
                    "message has " + std::to_string(info.total_elements) +
                        " elements, layout has " + std::to_string(layout_.total_size()));
    detail::require(info.spans.size() == plan_.size(), errc::layout_mismatch,
                    "message has " + std::to_string(info.spans.size()) + " spans, plan has " +
                        std::to_string(plan_.size()));
    for (std::size_t s = 0; s < plan_.size(); ++s) {
      detail::require(info.spans[s].elements == plan_[s].size, errc::layout_mismatch,
                      span_name(s) + " has " + std::to_string(info.spans[s].elements) +
                          " elements in the message, " + std::to_string(plan_[s].size) +
                          " in this layout");
      const bool raw = info.spans[s].mode == span_mode_raw;
      detail::require(raw == !plan_[s].compressed, errc::scheme_mismatch, [&] {
        return std::string(span_name(s) + (raw ? " is raw in the message but compressed here"
                                               : " is compressed in the message but raw here"));
      });
    }
    detail::require(info.plan_digest == digest_, errc::scheme_mismatch,
                    "compressor parameters or per-layer rules differ from this codec's");
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
    if (max_bits < detail::inf_abs_bits) {
      return;
    }
    std::size_t i = 0;
    while (i < plan_[s].size && !detail::is_non_finite(to_float(x[i]))) {
      ++i;
    }
    detail::fail(errc::non_finite_input, "non-finite gradient value (NaN or Inf) in " +
                                             span_name(s) + " at element " + std::to_string(i) +
                                             " (global index " +
                                             std::to_string(plan_[s].begin + i) + ")");
  }

  // A finite value whose conversion to the wire's value type would give Inf is rejected
  // (errc::value_out_of_range) instead of producing a message the decoder refuses.
  template <class T>
  void require_in_range(std::uint32_t max_bits, std::uint32_t overflow_bits, const T* x,
                        std::size_t s) const {
    if (max_bits < overflow_bits) {
      return;
    }
    std::size_t i = 0;
    while (detail::abs_bits(to_float(x[i])) < overflow_bits) {
      ++i;
    }
    detail::fail(errc::value_out_of_range, "value " + std::to_string(to_float(x[i])) + " in " +
                                               span_name(s) + " at element " + std::to_string(i) +
                                               " overflows the encoding's " + "value type");
  }
  // Sparse spans: each kept value must fit the stored value type, and times the value scale
  // (unbiased random-k's n/k) stay finite.
  template <class T>
  void require_values_fit(const T* x, std::size_t s, float value_scale) const {
    using V = typename encoding_type::value_type;
    for (std::size_t i : sparse_ws_.indices) {
      const float v = to_float(x[i]);
      // the decoder scales the stored value, so the product is checked on that value
      if (detail::abs_bits(v) >= value_traits<V>::overflow_abs_bits ||
          detail::is_non_finite(to_float(from_float<V>(v)) * value_scale)) {
        detail::fail(errc::value_out_of_range,
                     "kept value " + std::to_string(v) + " in " + span_name(s) + " at element " +
                         std::to_string(i) + " overflows the encoding's value type or scale");
      }
    }
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
        selections_[s] = c.select(exec, x, d.size, context(s, key, mb), sparse_ws_);
        require_values_fit(x, s, selections_[s].value_scale);
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
          require_in_range(mb, coder_type::overflow_abs_bits, x, s);
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
        for (std::size_t i = 0; i < d.size; ++i) {
          detail::store_le(dst + i * sizeof(T), x[i]);
        }
      } else if constexpr (is_sparse) {
        write_sparse_span(dst, x, d.size, s);
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
    detail::store_le<std::uint64_t>(p + 48, detail::message_checksum(out));
  }

  template <class T>
  void write_sparse_span(std::byte* dst, const T* x, std::size_t n, std::size_t s) const {
    const std::size_t* idx = sel_indices_.data() + sel_offsets_[s];
    const std::size_t k = sel_offsets_[s + 1] - sel_offsets_[s];
    const bool implied = selections_[s].indices_implied;
    const unsigned w = encoding_type::index_bytes(n);
    detail::store_le<std::uint64_t>(dst, k);
    detail::store_le<std::uint8_t>(dst + 8, static_cast<std::uint8_t>(w));
    detail::store_le<std::uint8_t>(dst + 9, implied ? encoding_type::flag_implied : 0);
    detail::store_le<std::uint16_t>(dst + 10, 0);
    detail::store_le<float>(dst + 12, selections_[s].value_scale);
    std::byte* q = dst + encoding_type::span_header_bytes;
    if (!implied) {
      for (std::size_t j = 0; j < k; ++j) {
        encoding_type::store_index(q + j * w, w, idx[j]);
      }
      q += k * w;
    }
    constexpr std::size_t vb = sizeof(typename encoding_type::value_type);
    for (std::size_t j = 0; j < k; ++j) {
      encoding_type::store_value(q + j * vb, to_float(x[idx[j]]));
    }
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
        c.sparsifier.select(exec, x, d.size, context(s, key, mb), sparse_ws_);
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
      decode_raw(src, info.value_type, d.size, mode, dst);
    } else if constexpr (is_sparse) {
      decode_sparse(src, d.size, s, mode, dst);
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
      for (std::size_t i = 0; i < d.size; ++i) {
        const float a = add ? to_float(held[i]) : 0.0f;
        const float v = range_scratch_[i];
        detail::require(!detail::write_overflows<T>(a, v, add), errc::value_out_of_range, [&] {
          return std::string(add ? "the sum of a decoded value and the output"
                                 : "a decoded value") +
                 " in " + span_name(s) + " at element " + std::to_string(i) +
                 " overflows the output's " + std::string(value_traits<T>::name);
        });
      }
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
    detail::require(out_size == layout_.total_size(), errc::size_mismatch,
                    "output has " + std::to_string(out_size) + " elements, layout has " +
                        std::to_string(layout_.total_size()));
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
    if (!d.compressed) {
      const std::size_t vs = value_size(info.value_type);
      detail::require(bytes == d.size * vs, errc::corrupt_payload,
                      span_name(s) + ": raw span of " + std::to_string(bytes) + " bytes, needs " +
                          std::to_string(d.size * vs));
      std::uint32_t max_bits = 0;
      for (std::size_t i = 0; i < d.size; ++i) {
        const std::uint32_t bits = detail::abs_bits(load_raw(src, info.value_type, i));
        detail::require(bits < detail::inf_abs_bits, errc::corrupt_payload, [&] {
          return std::string(span_name(s) + ": raw value " + std::to_string(i) + " is not finite");
        });
        max_bits = std::max(max_bits, bits);
      }
      if (max_abs_bits != nullptr) {
        *max_abs_bits = max_bits;
      }
      scale_offsets_[s + 1] = scale_offsets_[s];
    } else if constexpr (is_sparse) {
      const std::uint32_t max_bits = validate_sparse(exec, info, src, bytes, s);
      if (max_abs_bits != nullptr) {
        *max_abs_bits = max_bits;
      }
      scale_offsets_[s + 1] = scale_offsets_[s];
    } else if constexpr (is_composite) {
      // room for the most scales any k <= n needs; trimmed to the count once k is known
      scales_.resize(scale_offsets_[s] + c.quantizer.num_scales(d.size));
      const std::size_t k = detail::sparse_codes_span::validate(
          exec, c, quantizer_coder(c), src, bytes, d.size, s, scales_.data() + scale_offsets_[s],
          [&] { return span_name(s) + ": "; }, max_abs_bits);
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

  [[nodiscard]] static float load_raw(const std::byte* src, value_type_id vt, std::size_t i) {
    switch (vt) {
    case value_type_id::f32:
      return detail::load_le<float>(src + 4 * i);
    case value_type_id::f16:
      return to_float(half{detail::load_le<std::uint16_t>(src + 2 * i)});
    case value_type_id::bf16:
      return to_float(bfloat16{detail::load_le<std::uint16_t>(src + 2 * i)});
    }
    return 0.0f;
  }
  template <class T>
  static void decode_raw(const std::byte* src, value_type_id vt, std::size_t n,
                         detail::decode_mode mode, T* dst) {
    for (std::size_t i = 0; i < n; ++i) {
      const float v = load_raw(src, vt, i);
      dst[i] = from_float<T>(mode == detail::decode_mode::add ? to_float(dst[i]) + v : v);
    }
  }

  /// Validates sparse span s; returns the largest |decoded value| (fp32 bits).
  template <class Exec>
  std::uint32_t validate_sparse(const Exec& exec, const message_info& info, const std::byte* src,
                                std::size_t bytes, std::size_t s) {
    const std::size_t n = plan_[s].size;
    const compressor_type& c = span_compressors_[s];
    auto where = [&] { return span_name(s) + ": "; };
    const std::size_t k = detail::check_sparse_header<encoding_type>(c, src, bytes, n, where);
    const unsigned w = encoding_type::index_bytes(n);
    const bool implied =
        (detail::load_le<std::uint8_t>(src + 9) & encoding_type::flag_implied) != 0;
    const float scale = detail::load_le<float>(src + 12);
    const std::byte* q = src + encoding_type::span_header_bytes;
    if (implied) {
      if constexpr (requires { c.shared_seed; }) {
        const span_context ctx{plan_[s].begin, info.seed, info.stream_word, 0};
        c.select_subset(exec, n, k, ctx, sparse_ws_);
        sel_indices_.insert(sel_indices_.end(), sparse_ws_.indices.begin(),
                            sparse_ws_.indices.end());
      }
    } else {
      detail::check_sparse_indices(q, k, w, n, where);
      q += k * w;
    }
    // the decoded value is the stored one times the span's value scale (n/k for unbiased
    // random-k): both must be finite
    constexpr std::size_t vb = sizeof(typename encoding_type::value_type);
    std::uint32_t max_bits = 0;
    for (std::size_t j = 0; j < k; ++j) {
      const float v = encoding_type::load_value(q + j * vb);
      const std::uint32_t bits = detail::abs_bits(v * scale);
      detail::require(
          !detail::is_non_finite(v) && bits < detail::inf_abs_bits, errc::corrupt_payload, [&] {
            return std::string(
                where() + "value " + std::to_string(j) +
                (detail::is_non_finite(v) ? " is not finite" : " times the value scale overflows"));
          });
      max_bits = std::max(max_bits, bits);
    }
    return max_bits;
  }

  template <class T>
  void decode_sparse(const std::byte* src, std::size_t n, std::size_t s, detail::decode_mode mode,
                     T* dst) const {
    const auto k = static_cast<std::size_t>(detail::load_le<std::uint64_t>(src));
    const unsigned w = encoding_type::index_bytes(n);
    const bool implied =
        (detail::load_le<std::uint8_t>(src + 9) & encoding_type::flag_implied) != 0;
    const float scale = detail::load_le<float>(src + 12);
    const std::byte* values = src + encoding_type::span_header_bytes + (implied ? 0 : k * w);
    if (mode == detail::decode_mode::assign) {
      for (std::size_t i = 0; i < n; ++i) {
        dst[i] = from_float<T>(0.0f);
      }
    }
    constexpr std::size_t vb = sizeof(typename encoding_type::value_type);
    const detail::rounding_barrier keep; // the scaled value stays rounded before it is added
    std::size_t j = 0;
    for_each_sparse_index(src, n, s, [&](std::size_t i) {
      const float v = keep(encoding_type::load_value(values + j++ * vb) * scale);
      dst[i] = from_float<T>(mode == detail::decode_mode::add ? to_float(dst[i]) + v : v);
    });
  }

  /// Calls f(i) for the span-local index of every value of a validated sparse span, in order.
  template <class F>
  void for_each_sparse_index(const std::byte* src, std::size_t n, std::size_t s, F&& f) const {
    const auto k = static_cast<std::size_t>(detail::load_le<std::uint64_t>(src));
    const unsigned w = encoding_type::index_bytes(n);
    const bool implied =
        (detail::load_le<std::uint8_t>(src + 9) & encoding_type::flag_implied) != 0;
    const std::byte* q = src + encoding_type::span_header_bytes;
    const std::size_t* regenerated = sel_indices_.data() + sel_offsets_[s];
    for (std::size_t j = 0; j < k; ++j) {
      f(implied ? regenerated[j]
                : static_cast<std::size_t>(encoding_type::load_index(q + j * w, w)));
    }
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
