// SPDX-License-Identifier: Apache-2.0
// Philox4x32-10 known answers (Random123 kat_vectors), the stream layout, and the fp16/bf16
// storage types' exact round-to-nearest-even conversions.

#include "../support/generators.hpp"

#include <gradcomp/gradcomp.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <set>

using namespace gradcomp;

TEST_CASE("Philox4x32-10 reproduces the published known-answer vectors", "[random][philox]") {
  STATIC_REQUIRE(philox4x32_10({0, 0, 0, 0}, {0, 0}) ==
                 philox_counter{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
  STATIC_REQUIRE(philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                               {0xffffffffu, 0xffffffffu}) ==
                 philox_counter{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
  STATIC_REQUIRE(philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
                               {0xa4093822u, 0x299f31d0u}) ==
                 philox_counter{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
}

TEST_CASE("stream words pack step, rank, role and purpose without overlap", "[random][stream]") {
  const stream_key a{1, 5, 3, role::worker};
  REQUIRE(a.stream_word() == ((5ull << 24) | (3ull << 4)));
  const stream_key top{1, stream_key::max_step, stream_key::max_rank, role::master};
  REQUIRE(top.stream_word() == ~std::uint64_t{7});
  // every field changes the word, and purposes stay distinct
  std::set<std::uint64_t> words;
  for (std::uint64_t step : {std::uint64_t{0}, std::uint64_t{1}, stream_key::max_step})
    for (std::uint32_t rank : {0u, 1u, stream_key::max_rank})
      for (role r : {role::worker, role::master})
        for (auto p : {random_purpose::rounding, random_purpose::subset}) {
          const random_stream rs(9, stream_key{9, step, rank, r}.stream_word(), p);
          words.insert((std::uint64_t{rs.stream_hi} << 32) | rs.stream_lo);
        }
  REQUIRE(words.size() == 3 * 3 * 2 * 2);
  REQUIRE_THROWS_AS((stream_key{0, stream_key::max_step + 1}.validate()), gradcomp::error);
  REQUIRE_THROWS_AS((stream_key{0, 0, stream_key::max_rank + 1}.validate()), gradcomp::error);
}

TEST_CASE("element randomness depends on the global index only", "[random][stream]") {
  const random_stream rs(42, 7, random_purpose::rounding);
  // 32-bit draws: lane i%4 of block i/4; 64-bit draws: lanes pair of block i/2
  for (std::uint64_t i : {0ull, 1ull, 2ull, 3ull, 4ull, 1ull << 33, (1ull << 40) + 3}) {
    REQUIRE(rs.bits32(i) == rs.block(i / 4)[i % 4]);
    const philox_counter b = rs.block(i / 2);
    REQUIRE(rs.bits64(i) == ((std::uint64_t{b[2 * (i % 2)]} << 32) | b[2 * (i % 2) + 1]));
  }
  // distinct high counter words at 2^32 block boundaries
  REQUIRE(rs.block(0) != rs.block(1ull << 32));
}

namespace {
// Reference RNE conversion through double arithmetic: nearest representable value, ties to even.
template <class V>
float nearest(float x) {
  if (std::isnan(x))
    return x;
  const double a = std::fabs(static_cast<double>(x));
  double best = 0;
  std::uint16_t best_bits = 0;
  double best_err = INFINITY;
  // candidates around the truncated bit pattern
  const std::uint16_t approx = from_float<V>(static_cast<float>(a)).bits;
  for (int d = -2; d <= 2; ++d) {
    const int b = static_cast<int>(approx) + d;
    if (b < 0 || b > 0x7fff)
      continue;
    const float v = to_float(V{static_cast<std::uint16_t>(b)});
    if (std::isnan(v))
      continue;
    const double err = std::fabs(static_cast<double>(v) - a);
    if (err < best_err || (err == best_err && (b & 1) == 0)) {
      best_err = err;
      best = v;
      best_bits = static_cast<std::uint16_t>(b);
    }
  }
  (void)best_bits;
  return static_cast<float>(std::signbit(x) ? -best : best);
}
} // namespace

TEST_CASE("batched Philox words equal the one-at-a-time words", "[random][philox]") {
  const random_stream rs(0x0123456789abcdefull, stream_key{7, 12, 3}.stream_word(),
                         random_purpose::subset);
  // every alignment of the first element and every length up to three 16-element groups, and
  // counters whose block index crosses 2^32
  for (const std::uint64_t base : {std::uint64_t{0}, std::uint64_t{1} << 33}) {
    for (std::uint64_t first = base; first < base + 17; ++first) {
      for (std::size_t len = 0; len <= 48; ++len) {
        std::vector<std::uint64_t> got(len + 1, 0x5a5a5a5a5a5a5a5aull);
        detail::bits64_words(rs, first, len, got.data());
        for (std::size_t j = 0; j < len; ++j)
          REQUIRE(got[j] == rs.bits64(first + j));
        REQUIRE(got[len] == 0x5a5a5a5a5a5a5a5aull); // nothing written past len
      }
    }
  }
  alignas(64) std::byte raw[128];
  detail::philox_blocks8(rs, 1000, raw);
  for (std::uint64_t q = 0; q < 8; ++q)
    for (std::size_t l = 0; l < 4; ++l)
      REQUIRE(detail::load_le<std::uint32_t>(raw + 32 * l + 4 * q) == rs.block(1000 + q)[l]);
}

TEST_CASE("the 64x64 high product from 32-bit halves equals the 128-bit product",
          "[random][bits]") {
  __extension__ using u128 = unsigned __int128;
  const random_stream rs(99, 0, random_purpose::subset);
  const std::uint64_t edges[] = {0,
                                 1,
                                 0xffffffffull,
                                 0x100000000ull,
                                 ~std::uint64_t{0},
                                 ~std::uint64_t{0} - 1,
                                 0x8000000000000000ull};
  for (const std::uint64_t a : edges)
    for (const std::uint64_t b : edges)
      REQUIRE(detail::mul_high64_halves(a, b) ==
              static_cast<std::uint64_t>((static_cast<u128>(a) * b) >> 64));
  for (std::uint64_t i = 0; i < 20000; ++i) {
    const std::uint64_t a = rs.bits64(2 * i), b = rs.bits64(2 * i + 1) >> (i % 64);
    REQUIRE(detail::mul_high64_halves(a, b) ==
            static_cast<std::uint64_t>((static_cast<u128>(a) * b) >> 64));
    REQUIRE(detail::mul_high64(a, b) == detail::mul_high64_halves(a, b));
  }
}

namespace {
/// The straightforward float -> binary16 conversion (integer shifts and explicit ties), the
/// reference for the branch-free to_half().
std::uint16_t reference_to_half(float f) {
  const std::uint32_t x = detail::float_bits(f);
  const auto sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  const std::uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u)
    return sign | 0x7e00u;
  if (ax >= 0x477ff000u)
    return sign | 0x7c00u;
  if (ax < 0x38800000u) {
    const std::uint32_t e = ax >> 23;
    if (e < 102u)
      return sign;
    const std::uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126u - e;
    std::uint32_t q = mant >> shift;
    const std::uint32_t rem = mant & ((1u << shift) - 1u), halfway = 1u << (shift - 1u);
    q += (rem > halfway || (rem == halfway && (q & 1u))) ? 1u : 0u;
    return static_cast<std::uint16_t>(sign | q);
  }
  std::uint32_t h = (ax >> 13) - (112u << 10);
  const std::uint32_t rem = ax & 0x1fffu;
  h += (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ? 1u : 0u;
  return static_cast<std::uint16_t>(sign | h);
}
} // namespace

TEST_CASE("to_half equals the reference conversion on every float that matters", "[types]") {
  // every float of every binade where binary16 rounds (2^-26 .. 2^17), both signs, then a
  // stride through all 2^32 patterns (zeros, huge values, Inf, every kind of NaN)
  std::uint64_t mismatches = 0;
  for (std::uint32_t b = 101u << 23; b < 144u << 23; ++b) {
    for (const std::uint32_t s : {0u, 0x80000000u}) {
      const float f = detail::bits_float(b | s);
      mismatches += to_half(f).bits != reference_to_half(f) ? 1 : 0;
    }
  }
  for (std::uint64_t b = 0; b < (std::uint64_t{1} << 32); b += 4099) {
    const float f = detail::bits_float(static_cast<std::uint32_t>(b));
    mismatches += to_half(f).bits != reference_to_half(f) ? 1 : 0;
  }
  REQUIRE(mismatches == 0);
  static_assert(to_half(1.0f).bits == 0x3c00 && to_half(-0x1p-24f).bits == 0x8001);
}

TEST_CASE("half and bfloat16 round to nearest even and round-trip exactly", "[types]") {
  // Every bit pattern round-trips through float.
  for (std::uint32_t b = 0; b < 0x10000; ++b) {
    const half h{static_cast<std::uint16_t>(b)};
    const bfloat16 bf{static_cast<std::uint16_t>(b)};
    if (!std::isnan(to_float(h)))
      REQUIRE(to_half(to_float(h)) == h);
    if (!std::isnan(to_float(bf)))
      REQUIRE(to_bfloat16(to_float(bf)) == bf);
  }
  // Random floats over many binades, plus halfway points, match the nearest-value reference.
  for (std::uint64_t seed : test::seeds()) {
    const auto x = test::make_input(20000, test::distribution::mixed_scale, seed);
    for (float v : x) {
      CAPTURE(v);
      REQUIRE(to_float(to_half(v)) == nearest<half>(v));
      REQUIRE(to_float(to_bfloat16(v)) == nearest<bfloat16>(v));
    }
  }
  REQUIRE(to_half(65519.0f).bits == 0x7bff);
  REQUIRE(to_half(65520.0f).bits == 0x7c00); // ties to even: Inf
  REQUIRE(to_half(0x1p-25f).bits == 0x0000); // tie between 0 and 2^-24: even (0)
  REQUIRE(to_half(0x1.8p-25f).bits == 0x0001);
  REQUIRE(to_half(-0.0f).bits == 0x8000);
  REQUIRE(std::isnan(to_float(to_half(NAN))));
  REQUIRE(std::isnan(to_float(to_bfloat16(NAN))));
  REQUIRE(to_bfloat16(1.0f + 0x1p-8f).bits == 0x3f80); // halfway, even stays
  REQUIRE(to_bfloat16(1.0f + 0x1.8p-7f).bits == 0x3f82);
}
