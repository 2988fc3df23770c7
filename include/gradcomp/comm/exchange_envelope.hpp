// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../detail/bits.hpp"
#include "../encoding/wire_header.hpp"
#include "../error.hpp"
#include "../layout/model_layout.hpp"
#include "../version.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

/// @file
/// The envelope that ranks exchange before the messages of a step: who they are, what they
/// compress, and how many bytes follow, or the error that stopped them. Every rank checks every
/// envelope it receives before any message moves, so a rank with another layout, scheme, version,
/// seed or step, or one that failed locally, gets the same named error on every rank instead of a
/// hang or garbage. Communicators (comm/mpi.hpp) send it as 256 little-endian bytes:
///
///   offset size field
///   0      4    magic "GCEX"
///   4      2    protocol version (= wire_format_version)
///   6      2    status: 0 ok, else 1 + the errc of the sender's failure
///   8      1    Q_W compressor id     9  1  Q_W encoding id     10  1  Q_W granularity id
///   11     1    reserved (0)
///   12     4    the sender's rank
///   16     8    layout digest (layer names and sizes)
///   24     8    Q_W plan digest       32  8  Q_M plan digest
///   40     8    seed                  48  8  step
///   56     8    payload bytes that follow (for a root's verdict: the broadcast message's size)
///   64     192  text: the failure's message, NUL-padded (status != 0), else zero

namespace gradcomp {

inline constexpr std::size_t envelope_bytes = 256;
inline constexpr std::size_t envelope_text_bytes = 192;

/// What a rank declares about itself for one exchange.
struct exchange_envelope {
  std::uint16_t version = wire_format_version;
  std::uint16_t status = 0; ///< 0 ok, else 1 + static_cast<int>(errc)
  compressor_id compressor{};
  encoding_id encoding{};
  granularity_id granularity{};
  std::uint32_t rank = 0;
  std::uint64_t layout_digest = 0;
  std::uint64_t worker_plan = 0;
  std::uint64_t master_plan = 0;
  std::uint64_t seed = 0;
  std::uint64_t step = 0;
  std::uint64_t payload_bytes = 0;
  std::string text; ///< at most envelope_text_bytes - 1 bytes travel

  [[nodiscard]] bool ok() const noexcept { return status == 0; }

  /// This envelope reporting `e` instead of a payload.
  void set_failure(const error& e) {
    status = static_cast<std::uint16_t>(1 + static_cast<int>(e.code()));
    text = std::string(to_string(e.code())) + ": " + std::string(e.reason());
    payload_bytes = 0;
  }

  using bytes = std::array<std::byte, envelope_bytes>;

  [[nodiscard]] bytes serialize() const noexcept {
    bytes b{};
    std::byte* p = b.data();
    std::memcpy(p, "GCEX", 4);
    detail::store_le<std::uint16_t>(p + 4, version);
    detail::store_le<std::uint16_t>(p + 6, status);
    detail::store_le<std::uint8_t>(p + 8, static_cast<std::uint8_t>(compressor));
    detail::store_le<std::uint8_t>(p + 9, static_cast<std::uint8_t>(encoding));
    detail::store_le<std::uint8_t>(p + 10, static_cast<std::uint8_t>(granularity));
    detail::store_le<std::uint32_t>(p + 12, rank);
    detail::store_le<std::uint64_t>(p + 16, layout_digest);
    detail::store_le<std::uint64_t>(p + 24, worker_plan);
    detail::store_le<std::uint64_t>(p + 32, master_plan);
    detail::store_le<std::uint64_t>(p + 40, seed);
    detail::store_le<std::uint64_t>(p + 48, step);
    detail::store_le<std::uint64_t>(p + 56, payload_bytes);
    std::memcpy(p + 64, text.data(), std::min(text.size(), envelope_text_bytes - 1));
    return b;
  }

  /// Parses 256 untrusted bytes from rank `from`: errors bad_magic (not an envelope) and
  /// unsupported_version (another protocol version); every other field is checked against the
  /// receiver's own envelope by check_peer_envelope.
  static exchange_envelope parse(std::span<const std::byte, envelope_bytes> b, std::size_t from) {
    const std::byte* p = b.data();
    detail::require(std::memcmp(p, "GCEX", 4) == 0, errc::bad_magic,
                    "rank " + std::to_string(from) +
                        " sent bytes that are not a gradcomp envelope");
    exchange_envelope e;
    e.version = detail::load_le<std::uint16_t>(p + 4);
    detail::require(e.version == wire_format_version, errc::unsupported_version,
                    "rank " + std::to_string(from) + " speaks gradcomp protocol version " +
                        std::to_string(e.version) + ", this rank " +
                        std::to_string(wire_format_version));
    e.status = detail::load_le<std::uint16_t>(p + 6);
    e.compressor = static_cast<compressor_id>(detail::load_le<std::uint8_t>(p + 8));
    e.encoding = static_cast<encoding_id>(detail::load_le<std::uint8_t>(p + 9));
    e.granularity = static_cast<granularity_id>(detail::load_le<std::uint8_t>(p + 10));
    e.rank = detail::load_le<std::uint32_t>(p + 12);
    e.layout_digest = detail::load_le<std::uint64_t>(p + 16);
    e.worker_plan = detail::load_le<std::uint64_t>(p + 24);
    e.master_plan = detail::load_le<std::uint64_t>(p + 32);
    e.seed = detail::load_le<std::uint64_t>(p + 40);
    e.step = detail::load_le<std::uint64_t>(p + 48);
    e.payload_bytes = detail::load_le<std::uint64_t>(p + 56);
    const auto* t = reinterpret_cast<const char*>(p + 64);
    e.text.assign(t, std::find(t, t + envelope_text_bytes - 1, '\0'));
    return e;
  }
};

/// Layer names and sizes, in order, as one 64-bit digest.
[[nodiscard]] inline std::uint64_t layout_digest(const model_layout& layout) {
  detail::digest_builder d;
  d.add(layout.num_layers());
  for (const auto& l : layout.layers()) {
    d.add(l.size);
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (const char c : l.name) {
      h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
    }
    d.add(h);
  }
  return d.value();
}

/// Throws the error that envelope `got`, received from rank `from`, reveals against this rank's
/// own envelope `mine`: peer_failed (the sender reported a failure; its text follows),
/// invalid_parameter (the sender claims another rank), unsupported_version, wrong_step,
/// scheme_mismatch (seed, compressor, encoding, granularity or parameters), layout_mismatch, and
/// corrupt_payload for a payload larger than `max_payload` (so no receiver allocates what an
/// untrusted size asks for). Returns normally when the two ranks agree.
inline void check_peer_envelope(const exchange_envelope& mine, const exchange_envelope& got,
                                std::size_t from, std::size_t max_payload) {
  const std::string who = "rank " + std::to_string(from);
  if (!got.ok()) {
    const int code = got.status - 1;
    const std::string_view name = code <= static_cast<int>(errc::transport_error)
                                      ? to_string(static_cast<errc>(code))
                                      : std::string_view("unknown error");
    detail::fail(errc::peer_failed,
                 who + " failed: " + (got.text.empty() ? std::string(name) : got.text));
  }
  detail::require(got.rank == from, errc::invalid_parameter,
                  who + " calls itself rank " + std::to_string(got.rank));
  detail::require(got.version == mine.version, errc::unsupported_version,
                  who + " speaks protocol version " + std::to_string(got.version) + ", this rank " +
                      std::to_string(mine.version));
  detail::require(got.seed == mine.seed, errc::scheme_mismatch,
                  who + " uses seed " + std::to_string(got.seed) + ", this rank " +
                      std::to_string(mine.seed));
  detail::require(got.step == mine.step, errc::wrong_step,
                  who + " is at step " + std::to_string(got.step) + ", this rank at step " +
                      std::to_string(mine.step));
  detail::require(got.compressor == mine.compressor && got.encoding == mine.encoding &&
                      got.granularity == mine.granularity,
                  errc::scheme_mismatch, [&] {
                    auto ids = [](const exchange_envelope& e) {
                      return "(compressor " + std::to_string(static_cast<int>(e.compressor)) +
                             ", encoding " + std::to_string(static_cast<int>(e.encoding)) +
                             ", granularity " + std::to_string(static_cast<int>(e.granularity)) +
                             ")";
                    };
                    return who + " compresses with " + ids(got) + ", this rank with " + ids(mine);
                  });
  detail::require(got.layout_digest == mine.layout_digest, errc::layout_mismatch,
                  who + " has another model layout (layer names or sizes differ)");
  detail::require(got.worker_plan == mine.worker_plan && got.master_plan == mine.master_plan,
                  errc::scheme_mismatch,
                  who + " uses other compressor parameters or per-layer rules (Q_W or Q_M)");
  detail::require(got.payload_bytes <= max_payload, errc::corrupt_payload,
                  who + " announces a message of " + std::to_string(got.payload_bytes) +
                      " bytes, more than the scheme's bound of " + std::to_string(max_payload));
}

} // namespace gradcomp
