// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "../detail/bit_pack.hpp"
#include "../detail/bits.hpp"
#include "../detail/dispatch.hpp"
#include "../detail/prehashed_blocks.hpp"
#include "../error.hpp"
#include "../random/stream_key.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

/// @file
/// The span layout of every fixed-width code encoding:
///     [num_scales x f32 LE][n codes of `bits` bits, LSB-first, zero-padded to a byte]
/// or, for codes with a sign plane (QSGD levels, natural 9-bit; detail/bit_pack.hpp):
///     [num_scales x f32 LE][n magnitudes of bits-1 bits, padded][n sign bits, padded]
/// bytes = 4 * num_scales(n) + ceil(n * bits / 8), or 4 * num_scales(n) + ceil(n (bits-1) / 8)
/// + ceil(n / 8).

namespace gradcomp::detail {

struct packed_span {
  template <class C, class Coder>
  [[nodiscard]] static std::size_t bytes(const C& c, const Coder& coder, std::size_t n) {
    return 4 * c.num_scales(n) + packed_bytes(n, coder_layout(coder));
  }

  /// Writes the span at out. With `hashed` (the message begun there), the checksum blocks the
  /// codes fill are hashed as they are written (detail/prehashed_blocks.hpp).
  template <class Exec, class C, class Coder, class T>
  static void write(const Exec& exec, const C& c, const Coder& coder, const T* x, std::size_t n,
                    std::uint64_t global_begin, const float* scales, const random_stream& rs,
                    std::byte* out, prehashed_blocks* hashed = nullptr) {
    const std::size_t ns = c.num_scales(n);
    for (std::size_t i = 0; i < ns; ++i) {
      store_le<float>(out + 4 * i, scales[i]);
    }
    const std::uint64_t digest_sum =
        run<encode_codes>(exec, x, n, global_begin, ns > 0 ? scales : nullptr, c.scale_group(n), rs,
                          coder, out + 4 * ns, hashed);
    if (hashed != nullptr) {
      hashed->add(digest_sum);
    }
  }

  /// Validates a span payload of `bytes` bytes for n elements; scales are copied to `scales`.
  /// With `max_abs_bits`, also stores there the largest |decoded value| (fp32 bits).
  /// With `hashed` (the message begun there), the checksum blocks of the codes are hashed as they
  /// are read (detail/prehashed_blocks.hpp).
  template <class Exec, class C, class Coder>
  static void validate(const Exec& exec, const C& c, const Coder& coder, const std::byte* in,
                       std::size_t bytes_in, std::size_t n, std::size_t span, float* scales,
                       std::uint32_t* max_abs_bits = nullptr, prehashed_blocks* hashed = nullptr) {
    auto where = [span] { return "span " + std::to_string(span) + ": "; };
    require(bytes_in == bytes(c, coder, n), errc::corrupt_payload,
            where() + std::to_string(bytes_in) + " payload bytes, the format needs " +
                std::to_string(bytes(c, coder, n)));
    const std::size_t ns = c.num_scales(n);
    for (std::size_t i = 0; i < ns; ++i) {
      scales[i] = load_le<float>(in + 4 * i);
      require(c.valid_scale(scales[i]), errc::corrupt_payload, [&] {
        return std::string(where() + "scale " + std::to_string(i) +
                           " is invalid (non-finite or negative)");
      });
    }
    const std::byte* codes = in + 4 * ns;
    const code_check check =
        run<decode_codes>(exec, codes, n, scales, c.scale_group(n), coder,
                          max_abs_bits != nullptr ? decode_mode::measure : decode_mode::validate,
                          static_cast<float*>(nullptr), hashed);
    require(check.first_invalid == n, errc::corrupt_payload, [&] {
      return std::string(where() + "invalid code at element " +
                         std::to_string(check.first_invalid));
    });
    if (max_abs_bits != nullptr) {
      *max_abs_bits = check.max_abs_bits;
    }
    if (hashed != nullptr) {
      hashed->add(check.digest_sum);
    }
    const code_layout layout = coder_layout(coder);
    require(zero_padding(codes, n, layout.magnitude_bits()) &&
                (!layout.sign_plane ||
                 zero_padding(codes + packed_bytes(n, layout.magnitude_bits()), n, 1)),
            errc::corrupt_payload,
            [&] { return std::string(where() + "padding bits after the last code are not zero"); });
  }

  /// Whether the bits after the last of n `bits`-bit codes in a stream's last byte are zero.
  [[nodiscard]] static bool zero_padding(const std::byte* stream, std::size_t n, unsigned bits) {
    const std::size_t used_bits = (n % 8) * bits % 8;
    if (used_bits == 0) {
      return true;
    }
    const auto last = static_cast<unsigned>(stream[packed_bytes(n, bits) - 1]);
    return (last >> used_bits) == 0;
  }

  template <class Exec, class C, class Coder, class T>
  static void decode(const Exec& exec, const C& c, const Coder& coder, const std::byte* in,
                     std::size_t n, const float* scales, decode_mode mode, T* out) {
    const std::size_t ns = c.num_scales(n);
    run<decode_codes>(exec, in + 4 * ns, n, ns > 0 ? scales : nullptr, c.scale_group(n), coder,
                      mode, out);
  }
};

} // namespace gradcomp::detail
