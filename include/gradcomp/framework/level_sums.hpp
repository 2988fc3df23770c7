// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../detail/bits.hpp"
#include "../detail/level_plan.hpp"
#include "../error.hpp"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <utility>
#include <vector>

/// @file
/// Exact sums of quantized messages over n workers (compressor/level_rule.hpp). Each element's
/// level l in [-L, L] is stored biased, as l + L in [0, 2L], in a field of w = bit_width(2 L n)
/// bits; floor(64 / w) fields share a 64-bit word, none straddles two. The words of n messages
/// then add as plain unsigned integers: no field can pass 2 L n < 2^w, so no carry crosses a
/// field, and the sum is the same in any order and under any reduction tree. That is what lets
/// a real all-reduce (MPI_SUM on MPI_UINT64_T, NCCL's ncclUint64 sum) carry the aggregate with
/// accumulators of log2(n) + log2(2L + 1) bits per element. The value of an element's sum S of
/// levels is scale * S / unit, rounded once to fp32 (S / unit for codes without a scale), so it
/// needs every worker's scales to be the same (TernGrad's scaler sharing, a shared QSGD norm).
///
/// Words per span: ceil(size / floor(64 / w)); each span starts a new word. Two last words hold
/// checks that add like the rest (mod 2^64): the total of all biased levels, and their total
/// weighted by element index + 1. A sum whose fields do not match both was altered, or carried
/// from one field into the next (check()); a contributor that sends valid but wrong levels cannot
/// be told apart in any sum. Host memory, CPU.

namespace gradcomp {

class level_sums {
public:
  /// Sums of messages with level plan `plan` (codec::level_spans()) over `contributors` workers.
  /// Errors: invalid_parameter when the plan's codes do not add (its why_not) or contributors is
  /// 0, value_out_of_range when a sum would need fields wider than 63 bits.
  level_sums(detail::level_plan plan, std::size_t contributors)
      : plan_(std::move(plan)), contributors_(contributors) {
    detail::require(plan_.summable(), errc::invalid_parameter, plan_.why_not);
    detail::require(contributors > 0, errc::invalid_parameter, "level sums of 0 contributors");
    for (const detail::level_span& sp : plan_.spans) {
      const std::uint64_t top = 2ull * sp.rule.max_level * contributors;
      detail::require(contributors < (1ull << 32) && std::bit_width(top) <= 63,
                      errc::value_out_of_range,
                      "sums of levels up to " + std::to_string(sp.rule.max_level) + " over " +
                          std::to_string(contributors) + " contributors need over 63 bits");
      const auto width = static_cast<unsigned>(std::bit_width(top));
      fields_.push_back({width, 64 / width, words_, scales_});
      words_ += detail::ceil_div(sp.size, 64 / width);
      scales_ += sp.num_scales;
      message_bytes_ = std::max(message_bytes_, sp.payload_offset + 4 * sp.num_scales +
                                                    detail::packed_bytes(sp.size, sp.codes));
      scaled_ = scaled_ || (sp.rule.scaled && sp.num_scales > 0);
    }
  }

  /// 64-bit words of one message's levels, and of their sum (the two check words included).
  [[nodiscard]] std::size_t words() const noexcept { return words_ + 2; }
  [[nodiscard]] std::size_t contributors() const noexcept { return contributors_; }
  /// Scales per message (the layout of codec::local_scales()).
  [[nodiscard]] std::size_t num_scales() const noexcept { return scales_; }
  /// Whether the messages carry scales, which every contributor must then share.
  [[nodiscard]] bool scaled() const noexcept { return scaled_; }

  /// Adds the levels of `msg`, a message its codec validated, to `sums` (words() words). The
  /// first message added sets `scales` (when it is empty); a later one whose scales differ is
  /// rejected (scheme_mismatch) and adds nothing. A message too short for the plan is
  /// truncated_message.
  void add(std::span<const std::byte> msg, std::span<std::uint64_t> sums,
           std::vector<float>& scales) const {
    require_words(sums.size());
    detail::require(msg.size() >= message_bytes_, errc::truncated_message,
                    "a message of " + std::to_string(msg.size()) + " bytes, its levels need " +
                        std::to_string(message_bytes_));
    const bool first = scales.empty();
    if (first) {
      scales.resize(scales_);
    }
    for (std::size_t s = 0; s < plan_.spans.size(); ++s) { // all scales checked before any add
      const detail::level_span& sp = plan_.spans[s];
      for (std::size_t i = 0; i < sp.num_scales; ++i) {
        const auto v = detail::load_le<float>(msg.data() + sp.payload_offset + 4 * i);
        float& shared = scales[fields_[s].first_scale + i];
        if (first) {
          shared = v;
        } else {
          require_same_scale(fields_[s].first_scale + i, shared, v);
        }
      }
    }
    for (std::size_t s = 0; s < plan_.spans.size(); ++s) {
      add_span(plan_.spans[s], fields_[s], msg.data(), sums.data(), sums.data() + words_);
    }
  }

  /// Checks the words of a sum that came over the network: every field at most 2 L n, the bits
  /// above a word's last used field zero, and the fields matching the two check words, else
  /// corrupt_payload (a contributor sent codes outside its levels, or the words were altered).
  void check(std::span<const std::uint64_t> sums) const {
    require_words(sums.size());
    std::uint64_t total = 0, weighted = 0;
    for (std::size_t s = 0; s < plan_.spans.size(); ++s) {
      const detail::level_span& sp = plan_.spans[s];
      const std::uint64_t top = 2ull * sp.rule.max_level * contributors_;
      std::size_t e = sp.begin;
      for_each_word(fields_[s], sp.size, sums.data(), [&](std::uint64_t word, std::size_t used) {
        const unsigned width = fields_[s].width;
        const bool spare_clear = used * width == 64 || (word >> (used * width)) == 0;
        bool in_range = spare_clear;
        for (std::size_t j = 0; j < used; ++j, ++e) {
          const std::uint64_t v = (word >> (j * width)) & mask(width);
          in_range = in_range && v <= top;
          total += v;
          weighted += v * (e + 1);
        }
        detail::require(in_range, errc::corrupt_payload, [&] {
          return "the summed levels of elements up to " + std::to_string(e) +
                 " are out of range: a contributor sent codes outside its levels";
        });
      });
    }
    detail::require(total == sums[words_] && weighted == sums[words_ + 1], errc::corrupt_payload,
                    "the summed levels do not match their check words: the sums were altered");
  }

  /// The value of every element's sum: out[i] = scale * S / unit (S / unit without scales),
  /// rounded once to fp32, with S the sum of the contributors' levels.
  void values(std::span<const std::uint64_t> sums, std::span<const float> scales,
              std::span<float> out) const {
    require_words(sums.size());
    detail::require(scales.size() == scales_, errc::size_mismatch,
                    "level sums: " + std::to_string(scales.size()) + " scales, expected " +
                        std::to_string(scales_));
    for (std::size_t s = 0; s < plan_.spans.size(); ++s) {
      const detail::level_span& sp = plan_.spans[s];
      const auto bias = static_cast<std::int64_t>(sp.rule.max_level * contributors_);
      const bool scaled = sp.rule.scaled && sp.num_scales > 0;
      const float* scale = scales.data() + fields_[s].first_scale;
      float* dst = out.data() + sp.begin;
      std::size_t in_group = 0;
      for_each_word(fields_[s], sp.size, sums.data(), [&](std::uint64_t word, std::size_t used) {
        const unsigned width = fields_[s].width;
        for (std::size_t j = 0; j < used; ++j) {
          const auto sum = static_cast<double>(
              static_cast<std::int64_t>((word >> (j * width)) & mask(width)) - bias);
          *dst++ =
              static_cast<float>((scaled ? static_cast<double>(*scale) : 1.0) * sum / sp.rule.unit);
          if (++in_group == sp.group) { // the next element is on the next scale
            in_group = 0;
            ++scale;
          }
        }
      });
    }
  }

private:
  struct field_layout {
    unsigned width;
    std::size_t per_word;
    std::size_t first_word;
    std::size_t first_scale;
  };

  void require_words(std::size_t got) const {
    detail::require(got == words(), errc::size_mismatch,
                    std::to_string(got) + " words of level sums, expected " +
                        std::to_string(words()));
  }

  [[nodiscard]] static constexpr std::uint64_t mask(unsigned width) noexcept {
    return (std::uint64_t{1} << width) - 1;
  }

  /// Calls visit(word, fields used) for each word of a span of n elements, in order.
  template <class Visit>
  static void for_each_word(const field_layout& f, std::size_t n, const std::uint64_t* sums,
                            Visit&& visit) {
    for (std::size_t e = 0, w = f.first_word; e < n; e += f.per_word, ++w) {
      visit(sums[w], std::min(f.per_word, n - e));
    }
  }

  static void require_same_scale(std::size_t i, float first, float mine) {
    detail::require(std::memcmp(&first, &mine, sizeof(float)) == 0, errc::scheme_mismatch, [&] {
      return "scale " + std::to_string(i) + " is " + std::to_string(mine) +
             ", the first message's " + std::to_string(first) +
             ": level sums need one shared scale per span (share_scales)";
    });
  }

  /// Consecutive codes of `bits` (<= 32) bits from an LSB-first stream of `bytes` bytes.
  class code_stream {
  public:
    code_stream(const std::byte* p, std::size_t bytes, unsigned bits) noexcept
        : p_(p), bytes_(bytes), bits_(bits) {}
    std::uint32_t next() noexcept {
      while (have_ < bits_ && pos_ < bytes_) { // at most 56 + 8 bits held
        buffer_ |= static_cast<std::uint64_t>(p_[pos_++]) << have_;
        have_ += 8;
      }
      const auto c = static_cast<std::uint32_t>(buffer_ & mask(bits_));
      buffer_ >>= bits_;
      have_ -= have_ < bits_ ? have_ : bits_;
      return c;
    }

  private:
    const std::byte* p_;
    std::size_t bytes_, pos_ = 0;
    unsigned bits_, have_ = 0;
    std::uint64_t buffer_ = 0;
  };

  /// Calls f(level) for the levels of a span's n codes, in order.
  template <class F>
  static void for_each_level(const detail::level_span& sp, const std::byte* codes, F&& f) {
    const unsigned m = sp.codes.magnitude_bits();
    const std::size_t stream = detail::packed_bytes(sp.size, m);
    code_stream mags(codes, stream, m);
    switch (sp.rule.map) {
    case level_map::ternary:
      for (std::size_t e = 0; e < sp.size; ++e) {
        const std::uint32_t c = mags.next();
        f(c == 1 ? std::int64_t{1} : (c == 2 ? std::int64_t{-1} : std::int64_t{0}));
      }
      return;
    case level_map::sign_bit:
      for (std::size_t e = 0; e < sp.size; ++e) {
        f(mags.next() != 0 ? std::int64_t{-1} : std::int64_t{1});
      }
      return;
    case level_map::sign_magnitude:
      break;
    }
    if (sp.codes.sign_plane) {
      code_stream signs(codes + stream, detail::packed_bytes(sp.size, 1), 1);
      for (std::size_t e = 0; e < sp.size; ++e) {
        const auto magnitude = static_cast<std::int64_t>(mags.next());
        f(signs.next() != 0 ? -magnitude : magnitude);
      }
      return;
    }
    for (std::size_t e = 0; e < sp.size; ++e) {
      const std::uint32_t c = mags.next();
      const auto magnitude = static_cast<std::int64_t>(c & mask(m - 1));
      f((c >> (m - 1)) != 0 ? -magnitude : magnitude);
    }
  }

  /// Adds span sp's biased levels to its words, and to the two check words.
  static void add_span(const detail::level_span& sp, const field_layout& f, const std::byte* msg,
                       std::uint64_t* sums, std::uint64_t* checks) {
    const std::byte* codes = msg + sp.payload_offset + 4 * sp.num_scales;
    const auto bias = static_cast<std::int64_t>(sp.rule.max_level);
    std::uint64_t* dst = sums + f.first_word;
    std::uint64_t word = 0, index = sp.begin;
    std::size_t j = 0;
    for_each_level(sp, codes, [&](std::int64_t level) {
      const auto biased = static_cast<std::uint64_t>(level + bias);
      word |= biased << (j * f.width);
      checks[0] += biased;
      checks[1] += biased * ++index;
      if (++j == f.per_word) {
        *dst++ += word;
        word = 0;
        j = 0;
      }
    });
    if (j != 0) {
      *dst += word;
    }
  }

  detail::level_plan plan_;
  std::size_t contributors_;
  std::vector<field_layout> fields_;
  std::size_t words_ = 0;
  std::size_t scales_ = 0;
  std::size_t message_bytes_ = 0; ///< where the last span's codes end
  bool scaled_ = false;
};

} // namespace gradcomp
