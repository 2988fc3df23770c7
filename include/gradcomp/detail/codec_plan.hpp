// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../encoding/wire_header.hpp"
#include "../error.hpp"
#include "../layout/model_layout.hpp"
#include "../scheme.hpp"
#include "level_plan.hpp"
#include "span_coder.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

/// @file
/// What codec<Scheme> knows before it sees a gradient, the same for every backend: the scheme,
/// the layout, the span plan with each span's compressor, the plan digest messages carry, the
/// bound on a message's size, and how errors name a span and judge a frame. The CUDA backend
/// reads its tables from here.

namespace gradcomp::detail {

template <class Scheme>
class codec_plan {
public:
  using scheme_type = Scheme;
  using compressor_type = typename Scheme::compressor_type;
  using encoding_type = typename Scheme::encoding_type;
  using granularity_type = typename Scheme::granularity_type;
  static constexpr bool is_sparse = Scheme::is_sparse;
  static constexpr bool is_composite = Scheme::is_composite;

  /// Validates the scheme's parameters and plans its spans over the layout.
  codec_plan(Scheme scheme, model_layout layout)
      : scheme_(std::move(scheme)), layout_(std::move(layout)) {
    scheme_.compressor.validate();
    plan_ = scheme_.granularity.plan(layout_, scheme_.rules);
    require(plan_.size() <= 0xffffffffu, errc::invalid_parameter, "more than 2^32-1 spans");
    span_compressors_.reserve(plan_.size());
    for (const span_desc& s : plan_) {
      span_compressors_.push_back(s.parameter ? scheme_.compressor.with_parameter(*s.parameter)
                                              : scheme_.compressor);
    }
    digest_ = detail::plan_digest(scheme_.compressor, plan_, span_compressors_);
  }

  [[nodiscard]] const Scheme& scheme() const noexcept { return scheme_; }
  /// The compressor, encoding and granularity ids every message of this codec carries.
  [[nodiscard]] scheme_ids ids() const noexcept {
    return {compressor_type::id, encoding_type::id, granularity_id_of(scheme_.granularity)};
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
      total += plan_[s].compressed ? coder().max_bytes(span_compressors_[s], n) : n * sizeof(T);
    }
    return total;
  }

  /// Where the integer levels of this codec's messages lie, for exact sums over workers
  /// (framework/level_sums.hpp); `why_not` says why when its codes do not add.
  [[nodiscard]] level_plan level_spans() const {
    level_plan lp;
    if constexpr (is_sparse || is_composite ||
                  !requires(const compressor_type& c, const encoding_type& e) {
                    c.coder(e).levels();
                  }) {
      lp.why_not = std::string(compressor_type::name) + " codes do not add: level sums take " +
                   "TernGrad, QSGD, sign and scaled sign on their fixed-width encodings";
    } else {
      std::size_t offset = wire_header_bytes + plan_.size() * wire_directory_entry_bytes;
      for (std::size_t s = 0; s < plan_.size(); ++s) {
        const span_desc& d = plan_[s];
        if (!d.compressed) {
          lp.why_not = span_name(s) + " is sent raw: fp32 sums depend on their order";
          break;
        }
        const compressor_type& c = span_compressors_[s];
        const auto coder_of = c.coder(scheme_.encoding);
        lp.spans.push_back({d.begin, d.size, offset, c.num_scales(d.size), c.scale_group(d.size),
                            coder_layout(coder_of), coder_of.levels()});
        offset += coder().max_bytes(c, d.size);
      }
    }
    return lp;
  }

  /// The digest of the plan (compressor parameters, span sizes, rules) that messages carry.
  [[nodiscard]] std::uint64_t plan_digest() const noexcept { return digest_; }

  /// Throws the frame-level error (scheme_mismatch, layout_mismatch) of a parsed message that
  /// this codec did not write, or whose plan differs.
  void check_frame(const message_info& info) const {
    check_frame_matches(info, compressor_type::id, encoding_type::id, ids().granularity,
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

protected:
  [[nodiscard]] span_coder_for<Scheme> coder() const noexcept { return {scheme_.encoding}; }

  Scheme scheme_;
  model_layout layout_;
  std::vector<span_desc> plan_;
  std::vector<compressor_type> span_compressors_;
  std::uint64_t digest_ = 0;
};

} // namespace gradcomp::detail
