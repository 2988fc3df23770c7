// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../detail/bits.hpp"
#include "../encoding/wire_header.hpp"
#include "../error.hpp"
#include "../payload.hpp"
#include "../random/stream_key.hpp"
#include "matrix_plan.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

/// @file
/// The two messages of a low-rank step in the library's frame (encoding/wire_header.hpp):
/// compressor id powersgd, encoding lowrank_p_f32 or lowrank_q_f32, granularity layer or flat,
/// value type f32, one directory span per matrix of the plan (elements = the matrix's size, mode
/// raw for a raw matrix). Payloads, back to back, are the round's fp32 buffer in plan order
/// (matrix_plan.hpp): round P carries P factors and raw values, round Q the Q factors (a raw
/// matrix has 0 bytes there). The stream word names the step and who wrote it: a worker (role
/// worker, its rank) or a sum of contributions (role master, rank field = how many were summed).
///
/// Every message is checked in full before a value is used: frame, checksum, ids, plan digest,
/// each span's byte count, the step, the role, and every value finite.

namespace gradcomp {

enum class lowrank_round : std::uint8_t { p = 0, q = 1 };

namespace detail {

[[nodiscard]] constexpr encoding_id lowrank_encoding(lowrank_round round) noexcept {
  return round == lowrank_round::p ? encoding_id::lowrank_p_f32 : encoding_id::lowrank_q_f32;
}
[[nodiscard]] inline const char* lowrank_round_name(lowrank_round round) noexcept {
  return round == lowrank_round::p ? "P" : "Q";
}
[[nodiscard]] inline std::size_t lowrank_span_floats(const lowrank_matrix& m,
                                                     lowrank_round round) noexcept {
  return round == lowrank_round::p ? m.p_floats() : m.q_floats();
}
[[nodiscard]] inline std::size_t lowrank_payload_offset(const lowrank_plan& plan) noexcept {
  return wire_header_bytes + plan.matrices().size() * wire_directory_entry_bytes;
}

/// Bytes of a round's message under the plan.
[[nodiscard]] inline std::size_t lowrank_message_bytes(const lowrank_plan& plan,
                                                       lowrank_round round) noexcept {
  return lowrank_payload_offset(plan) +
         4 * (round == lowrank_round::p ? plan.p_floats() : plan.q_floats());
}

/// Writes a round's message holding `values` (the round buffer) into out (resized), sealed.
inline void write_lowrank_message(const lowrank_plan& plan, lowrank_round round,
                                  const stream_key& key, std::span<const float> values,
                                  std::vector<std::byte>& out) {
  const auto& ms = plan.matrices();
  out.resize(lowrank_message_bytes(plan, round));
  write_frame_header(out.data(), compressor_id::powersgd, lowrank_encoding(round),
                     plan.granularity(), value_type_id::f32, static_cast<std::uint32_t>(ms.size()),
                     plan.total_size(), key.seed, key.stream_word(), plan.digest());
  for (std::size_t s = 0; s < ms.size(); ++s) {
    write_directory_entry(out.data() + wire_header_bytes + s * wire_directory_entry_bytes,
                          ms[s].size, 4 * lowrank_span_floats(ms[s], round),
                          ms[s].compressed() ? span_mode_compressed : span_mode_raw);
  }
  std::byte* payload = out.data() + lowrank_payload_offset(plan);
  for (std::size_t i = 0; i < values.size(); ++i) {
    store_le<std::uint32_t>(payload + 4 * i, std::bit_cast<std::uint32_t>(values[i]));
  }
  seal_message(out);
}

/// What a checked message says.
struct lowrank_message_view {
  stream_key key;
  std::span<const std::byte> payload; ///< the round buffer as little-endian fp32
  [[nodiscard]] float value(std::size_t i) const noexcept {
    return std::bit_cast<float>(load_le<std::uint32_t>(payload.data() + 4 * i));
  }
};

/// Checks a round's message completely against the plan; `expected` is the role it must have and
/// step its step. Throws a named error (frame errors, scheme_mismatch, layout_mismatch,
/// wrong_step, protocol_error for a worker message where a sum is due or back, corrupt_payload
/// for a span of the wrong length or a non-finite value).
inline lowrank_message_view check_lowrank_message(const lowrank_plan& plan, lowrank_round round,
                                                  std::uint64_t seed, std::uint64_t step,
                                                  role expected, std::span<const std::byte> msg) {
  const message_info info = parse_frame(msg);
  const auto& ms = plan.matrices();
  check_frame_matches(info, compressor_id::powersgd, lowrank_encoding(round), plan.granularity(),
                      plan.total_size(), plan.spans(), plan.digest(),
                      [&](std::size_t s) { return "matrix '" + ms[s].name + "'"; });
  require(info.value_type == value_type_id::f32, errc::scheme_mismatch,
          "a low-rank message carries fp32 values");
  require(info.seed == seed, errc::scheme_mismatch, "the message was written with another seed");
  const stream_key key = stream_key::unpack(info.seed, info.stream_word);
  require((info.stream_word & 7u) == 0, errc::corrupt_payload, "stream word purpose bits set");
  require(key.step == step, errc::wrong_step,
          std::string(lowrank_round_name(round)) + " message of step " + std::to_string(key.step) +
              ", this exchange is at step " + std::to_string(step));
  require(key.role == expected, errc::protocol_error, [&] {
    return std::string(lowrank_round_name(round)) +
           (expected == role::master ? " message is one worker's, a sum was expected"
                                     : " message is a sum, one worker's was expected");
  });
  require(expected == role::worker || key.rank >= 1, errc::corrupt_payload,
          "a sum of zero contributions");
  for (std::size_t s = 0; s < ms.size(); ++s) {
    const std::size_t want = 4 * lowrank_span_floats(ms[s], round);
    require(info.spans[s].bytes == want, errc::corrupt_payload, [&] {
      return "matrix '" + ms[s].name + "' has " + std::to_string(info.spans[s].bytes) +
             " bytes in the " + lowrank_round_name(round) + " message, its factor takes " +
             std::to_string(want);
    });
  }
  lowrank_message_view view{key, msg.subspan(lowrank_payload_offset(plan))};
  const std::size_t n = view.payload.size() / 4;
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(view.value(i))) [[unlikely]] {
      const auto it = std::upper_bound(ms.begin(), ms.end(), i, [&](std::size_t x, const auto& m) {
        return x < (round == lowrank_round::p ? m.p_offset : m.q_offset);
      });
      fail(errc::corrupt_payload, "non-finite value in matrix '" + std::prev(it)->name +
                                      "' of the " + lowrank_round_name(round) + " message");
    }
  }
  return view;
}

/// Sums workers' messages of one round and step into one message (role master, rank field = the
/// number of messages). Each is checked in full; ranks must differ (duplicate_message); the sum
/// runs in ascending rank order whatever the order of `msgs`, so every rank that sums the same
/// messages writes the same bytes. A sum that overflows fp32 is value_out_of_range.
inline void sum_lowrank_messages(const lowrank_plan& plan, lowrank_round round, std::uint64_t seed,
                                 std::uint64_t step,
                                 std::span<const std::span<const std::byte>> msgs,
                                 std::vector<std::byte>& out) {
  require(!msgs.empty(), errc::invalid_parameter, "sum of no low-rank messages");
  std::vector<lowrank_message_view> views;
  views.reserve(msgs.size());
  for (const auto& m : msgs) {
    views.push_back(check_lowrank_message(plan, round, seed, step, role::worker, m));
  }
  std::sort(views.begin(), views.end(),
            [](const auto& a, const auto& b) { return a.key.rank < b.key.rank; });
  for (std::size_t w = 1; w < views.size(); ++w) {
    require(views[w].key.rank != views[w - 1].key.rank, errc::duplicate_message,
            "two " + std::string(lowrank_round_name(round)) + " messages from rank " +
                std::to_string(views[w].key.rank));
  }
  std::vector<float> sum(views.front().payload.size() / 4, 0.0f);
  for (const auto& v : views) {
    for (std::size_t i = 0; i < sum.size(); ++i) {
      sum[i] += v.value(i);
    }
  }
  require(std::all_of(sum.begin(), sum.end(), [](float v) { return std::isfinite(v); }),
          errc::value_out_of_range, [&] {
            return std::string("the sum of the ") + lowrank_round_name(round) +
                   " messages overflows fp32";
          });
  const stream_key key{seed, step, static_cast<std::uint32_t>(views.size()), role::master};
  key.validate();
  write_lowrank_message(plan, round, key, sum, out);
}

} // namespace detail
} // namespace gradcomp
