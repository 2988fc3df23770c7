// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../core/float16.hpp"
#include "../detail/bits.hpp"
#include "../detail/checksum.hpp"
#include "../detail/prehashed_blocks.hpp"
#include "../error.hpp"
#include "../granularity/span_plan.hpp"
#include "../payload.hpp"
#include "../version.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

/// @file
/// The wire format's frame: a 56-byte header and a span directory, all little-endian.
///
///   offset size field
///   0      4    magic "GCMP"
///   4      2    format version (wire_format_version)
///   6      1    compressor id          (payload.hpp)
///   7      1    encoding id            (payload.hpp)
///   8      1    granularity id         (span_plan.hpp)
///   9      1    gradient value type    (1 f32, 2 f16, 3 bf16; raw spans use it)
///   10     2    flags (0)
///   12     4    span count S
///   16     8    total elements d
///   24     8    seed
///   32     8    stream word (step, rank, role; random/stream_key.hpp)
///   40     8    plan digest (compressor parameters, per-span sizes, rules)
///   48     8    checksum of the message with these 8 bytes read as zero (detail/checksum.hpp)
///   56     24*S directory: per span u64 elements, u64 payload bytes, u8 mode (0 compressed,
///               1 raw), 7 zero bytes
///   then the span payloads, back to back, in directory order.
///
/// Message size = 56 + 24 S + sum of span payload bytes, exactly.

namespace gradcomp {

inline constexpr std::size_t wire_header_bytes = 56;
inline constexpr std::size_t wire_directory_entry_bytes = 24;
inline constexpr std::size_t wire_checksum_offset = 48; ///< the u64 checksum field of the header
inline constexpr std::uint8_t span_mode_compressed = 0;
inline constexpr std::uint8_t span_mode_raw = 1;

/// The parsed frame of a message (what inspect_message returns).
struct message_info {
  std::uint16_t version = 0;
  compressor_id compressor{};
  encoding_id encoding{};
  granularity_id granularity{};
  value_type_id value_type{};
  std::uint64_t total_elements = 0;
  std::uint64_t seed = 0;
  std::uint64_t stream_word = 0;
  std::uint64_t plan_digest = 0;
  struct span_entry {
    std::uint64_t elements = 0;
    std::uint64_t bytes = 0;
    std::uint8_t mode = 0;
    std::uint64_t offset = 0; ///< of the payload, from the start of the message
  };
  std::vector<span_entry> spans;
};

namespace detail {

inline constexpr std::byte wire_magic[4] = {std::byte{'G'}, std::byte{'C'}, std::byte{'M'},
                                            std::byte{'P'}};

/// The message checksum (detail/checksum.hpp) with the checksum field, bytes [48, 56), read as
/// zero: blocks of checksum_block_bytes from the start of the message. blocks_sum(first, end)
/// gives the summed digests of blocks [first, end) of msg: checksum_blocks, or a backend's
/// version of it (the CPU's splits the blocks among threads).
template <class BlocksSum>
[[nodiscard]] std::uint64_t message_checksum(std::span<const std::byte> msg,
                                             const BlocksSum& blocks_sum) {
  if (msg.empty()) {
    return checksum_finish(0, 0);
  }
  const std::size_t first_bytes = std::min(checksum_block_bytes, msg.size());
  std::uint64_t sum = 0;
  if (first_bytes >= wire_header_bytes) { // block 0 with the checksum field read as zero
    std::byte first[checksum_block_bytes];
    std::memcpy(first, msg.data(), first_bytes);
    std::memset(first + wire_checksum_offset, 0, 8);
    sum += checksum_block(first, first_bytes, 0);
  } else {
    sum += checksum_block(msg.data(), first_bytes, 0);
  }
  const std::uint64_t blocks = (msg.size() + checksum_block_bytes - 1) / checksum_block_bytes;
  sum += blocks_sum(std::uint64_t{1}, blocks);
  return checksum_finish(sum, msg.size());
}
[[nodiscard]] inline std::uint64_t message_checksum(std::span<const std::byte> msg) noexcept {
  return message_checksum(msg, [msg](std::uint64_t first, std::uint64_t end) {
    return checksum_blocks(msg.data(), msg.size(), first, end);
  });
}

/// Stores the checksum of a complete message (header, directory, payloads) in its header.
template <class BlocksSum>
void seal_message(std::span<std::byte> msg, const BlocksSum& blocks_sum) {
  store_le<std::uint64_t>(msg.data() + wire_checksum_offset, message_checksum(msg, blocks_sum));
}
/// seal_message() of a message whose writers hashed some of its blocks into `hashed`
/// (detail/prehashed_blocks.hpp): only the others are read; `hashed` is cleared.
template <class BlocksSum>
void seal_message(std::span<std::byte> msg, prehashed_blocks& hashed, const BlocksSum& blocks_sum) {
  seal_message(msg, [&](std::uint64_t first, std::uint64_t end) {
    return hashed.digest_sum(first, end, blocks_sum);
  });
  hashed.clear();
}
inline void seal_message(std::span<std::byte> msg) noexcept {
  store_le<std::uint64_t>(msg.data() + wire_checksum_offset, message_checksum(msg));
}

/// Digest of a sequence of 64-bit words (FNV-1a over words, then avalanche).
struct digest_builder {
  std::uint64_t h = 0xcbf29ce484222325ull;
  void add(std::uint64_t w) noexcept {
    h = (h ^ w) * 0x100000001b3ull;
    h = rotl64(h, 23);
  }
  [[nodiscard]] std::uint64_t value() const noexcept { return avalanche64(h); }
};

/// The plan digest a message carries: the scheme compressor's parameter word, then per span its
/// size, whether it is compressed and its own compressor's parameter word (span_compressors[s]).
template <class C>
[[nodiscard]] std::uint64_t plan_digest(const C& compressor, const std::vector<span_desc>& plan,
                                        const std::vector<C>& span_compressors) {
  digest_builder digest;
  digest.add(compressor.parameter_word());
  for (std::size_t s = 0; s < plan.size(); ++s) {
    digest.add(plan[s].size);
    digest.add(plan[s].compressed ? 1 : 0);
    digest.add(span_compressors[s].parameter_word());
  }
  return digest.value();
}

/// The first checks of every message: its size covers the header, the magic, the version.
inline void check_frame_start(std::span<const std::byte> prefix, std::size_t msg_size) {
  require(msg_size >= wire_header_bytes && prefix.size() >= wire_header_bytes,
          errc::truncated_message,
          "message of " + std::to_string(msg_size) + " bytes is shorter than the " +
              std::to_string(wire_header_bytes) + "-byte header");
  for (int i = 0; i < 4; ++i) {
    require(prefix[i] == wire_magic[i], errc::bad_magic, "message does not start with \"GCMP\"");
  }
  const auto version = load_le<std::uint16_t>(prefix.data() + 4);
  require(version == wire_format_version, errc::unsupported_version,
          "wire format version " + std::to_string(version) + ", this build reads " +
              std::to_string(wire_format_version));
}
inline void check_checksum(std::uint64_t stored, std::uint64_t computed) {
  require(stored == computed, errc::checksum_mismatch,
          "checksum does not match the message contents (corrupted in transit?)");
}

/// Parses the header fields and the directory of a message of msg_size bytes whose first bytes
/// are `prefix` (the header and, when it holds them, the directory entries), after
/// check_frame_start and the checksum. A directory longer than the prefix is truncated_message.
inline message_info parse_frame_fields(std::span<const std::byte> prefix, std::size_t msg_size) {
  message_info info;
  const std::byte* p = prefix.data();
  info.version = load_le<std::uint16_t>(p + 4);
  info.compressor = static_cast<compressor_id>(load_le<std::uint8_t>(p + 6));
  info.encoding = static_cast<encoding_id>(load_le<std::uint8_t>(p + 7));
  info.granularity = static_cast<granularity_id>(load_le<std::uint8_t>(p + 8));
  const auto vt = load_le<std::uint8_t>(p + 9);
  require(vt >= 1 && vt <= 3, errc::corrupt_payload,
          "gradient value type id " + std::to_string(vt) + " is not 1 (f32), 2 (f16) or 3 (bf16)");
  info.value_type = static_cast<value_type_id>(vt);
  require(load_le<std::uint16_t>(p + 10) == 0, errc::corrupt_payload, "header flags must be 0");
  const auto span_count = load_le<std::uint32_t>(p + 12);
  info.total_elements = load_le<std::uint64_t>(p + 16);
  info.seed = load_le<std::uint64_t>(p + 24);
  info.stream_word = load_le<std::uint64_t>(p + 32);
  info.plan_digest = load_le<std::uint64_t>(p + 40);
  const std::size_t dir_end_max = (msg_size - wire_header_bytes) / wire_directory_entry_bytes;
  require(span_count <= dir_end_max, errc::truncated_message,
          "header declares " + std::to_string(span_count) + " spans; the directory does not fit");
  require(span_count <= (prefix.size() - wire_header_bytes) / wire_directory_entry_bytes,
          errc::truncated_message,
          "header declares " + std::to_string(span_count) + " spans; more than were read");
  std::uint64_t offset = wire_header_bytes + std::uint64_t{span_count} * wire_directory_entry_bytes;
  std::uint64_t elements = 0;
  info.spans.resize(span_count);
  for (std::uint32_t s = 0; s < span_count; ++s) {
    const std::byte* e = p + wire_header_bytes + std::size_t{s} * wire_directory_entry_bytes;
    auto& sp = info.spans[s];
    sp.elements = load_le<std::uint64_t>(e);
    sp.bytes = load_le<std::uint64_t>(e + 8);
    sp.mode = load_le<std::uint8_t>(e + 16);
    require(sp.mode <= span_mode_raw, errc::corrupt_payload, [&] {
      return std::string("span " + std::to_string(s) + " has unknown mode " +
                         std::to_string(sp.mode));
    });
    for (int z = 17; z < 24; ++z) {
      require(e[z] == std::byte{0}, errc::corrupt_payload, [&] {
        return std::string("span " + std::to_string(s) + " directory padding is not zero");
      });
    }
    require(sp.bytes <= msg_size - offset, errc::truncated_message, [&] {
      return std::string("span " + std::to_string(s) + " declares " + std::to_string(sp.bytes) +
                         " bytes; the message ends first");
    });
    require(sp.elements <= info.total_elements - elements, errc::corrupt_payload,
            "span sizes add up to more than the declared total");
    sp.offset = offset;
    offset += sp.bytes;
    elements += sp.elements;
  }
  require(elements == info.total_elements, errc::corrupt_payload,
          "span sizes add up to " + std::to_string(elements) + ", header declares " +
              std::to_string(info.total_elements));
  require(offset == msg_size, errc::corrupt_payload,
          std::to_string(msg_size - offset) + " trailing bytes after the last span");
  return info;
}

/// Parses and validates the frame: magic, version, checksum, header fields, directory, sizes.
/// Span contents are validated by the encodings. Every failure is a named gradcomp::error.
/// blocks_sum as for message_checksum.
template <class BlocksSum>
message_info parse_frame(std::span<const std::byte> msg, const BlocksSum& blocks_sum) {
  check_frame_start(msg, msg.size());
  check_checksum(load_le<std::uint64_t>(msg.data() + wire_checksum_offset),
                 message_checksum(msg, blocks_sum));
  return parse_frame_fields(msg, msg.size());
}
/// parse_frame() with the checksum checked after `validate(info)` (the caller's checks of the
/// parsed frame and its spans), which may hash checksum blocks into `hashed` as it reads them
/// (detail/prehashed_blocks.hpp): the check then reads only the other blocks. The errors are
/// those of parse_frame() followed by validate(), in that order: when the frame's fields or
/// validate() fail, the checksum is checked in full first, and a mismatch is what is reported.
template <class BlocksSum, class Validate>
message_info parse_frame_validated(std::span<const std::byte> msg, prehashed_blocks& hashed,
                                   const BlocksSum& blocks_sum, const Validate& validate) {
  check_frame_start(msg, msg.size());
  const auto stored = load_le<std::uint64_t>(msg.data() + wire_checksum_offset);
  message_info info;
  hashed.begin(msg);
  try {
    info = parse_frame_fields(msg, msg.size());
    validate(info);
  } catch (const error&) {
    hashed.clear();
    check_checksum(stored, message_checksum(msg, blocks_sum));
    throw;
  }
  const std::uint64_t computed = message_checksum(msg, [&](std::uint64_t first, std::uint64_t end) {
    return hashed.digest_sum(first, end, blocks_sum);
  });
  hashed.clear();
  check_checksum(stored, computed);
  return info;
}
inline message_info parse_frame(std::span<const std::byte> msg) {
  return parse_frame(msg, [msg](std::uint64_t first, std::uint64_t end) {
    return checksum_blocks(msg.data(), msg.size(), first, end);
  });
}

inline void write_frame_header(std::byte* p, compressor_id c, encoding_id e, granularity_id g,
                               value_type_id v, std::uint32_t spans, std::uint64_t d,
                               std::uint64_t seed, std::uint64_t stream_word,
                               std::uint64_t digest) noexcept {
  for (int i = 0; i < 4; ++i) {
    p[i] = wire_magic[i];
  }
  store_le<std::uint16_t>(p + 4, wire_format_version);
  store_le<std::uint8_t>(p + 6, static_cast<std::uint8_t>(c));
  store_le<std::uint8_t>(p + 7, static_cast<std::uint8_t>(e));
  store_le<std::uint8_t>(p + 8, static_cast<std::uint8_t>(g));
  store_le<std::uint8_t>(p + 9, static_cast<std::uint8_t>(v));
  store_le<std::uint16_t>(p + 10, 0);
  store_le<std::uint32_t>(p + 12, spans);
  store_le<std::uint64_t>(p + 16, d);
  store_le<std::uint64_t>(p + 24, seed);
  store_le<std::uint64_t>(p + 32, stream_word);
  store_le<std::uint64_t>(p + 40, digest);
  store_le<std::uint64_t>(p + wire_checksum_offset, 0);
}
inline void write_directory_entry(std::byte* e, std::uint64_t elements, std::uint64_t bytes,
                                  std::uint8_t mode) noexcept {
  store_le<std::uint64_t>(e, elements);
  store_le<std::uint64_t>(e + 8, bytes);
  for (int z = 16; z < 24; ++z) {
    e[z] = std::byte{0};
  }
  store_le<std::uint8_t>(e + 16, mode);
}

/// Throws the frame-level error of a parsed message that a codec with these ids, total size,
/// span plan and plan digest did not write: scheme_mismatch (an id, a span's raw or compressed
/// mode, the digest) or layout_mismatch (the total, the span count, a span's size). span_name(s)
/// names span s in the errors.
template <class SpanName>
void check_frame_matches(const message_info& info, compressor_id compressor, encoding_id encoding,
                         granularity_id granularity, std::uint64_t total_elements,
                         const std::vector<span_desc>& plan, std::uint64_t digest,
                         const SpanName& span_name) {
  auto same_id = [](const char* what, auto got, auto want) {
    require(got == want, errc::scheme_mismatch, [&] {
      return std::string("message ") + what + " id " + std::to_string(static_cast<int>(got)) +
             ", this codec expects " + std::to_string(static_cast<int>(want));
    });
  };
  same_id("compressor", info.compressor, compressor);
  same_id("encoding", info.encoding, encoding);
  same_id("granularity", info.granularity, granularity);
  require(info.total_elements == total_elements, errc::layout_mismatch,
          "message has " + std::to_string(info.total_elements) + " elements, layout has " +
              std::to_string(total_elements));
  require(info.spans.size() == plan.size(), errc::layout_mismatch,
          "message has " + std::to_string(info.spans.size()) + " spans, plan has " +
              std::to_string(plan.size()));
  for (std::size_t s = 0; s < plan.size(); ++s) {
    require(info.spans[s].elements == plan[s].size, errc::layout_mismatch, [&] {
      return span_name(s) + " has " + std::to_string(info.spans[s].elements) +
             " elements in the message, " + std::to_string(plan[s].size) + " in this layout";
    });
    const bool raw = info.spans[s].mode == span_mode_raw;
    require(raw == !plan[s].compressed, errc::scheme_mismatch, [&] {
      return span_name(s) + (raw ? " is raw in the message but compressed here"
                                 : " is compressed in the message but raw here");
    });
  }
  require(info.plan_digest == digest, errc::scheme_mismatch,
          "compressor parameters or per-layer rules differ from this codec's");
}

} // namespace detail

/// Parses and validates a message's frame (header, checksum, directory) without decoding it.
inline message_info inspect_message(std::span<const std::byte> msg) {
  return detail::parse_frame(msg);
}

} // namespace gradcomp
