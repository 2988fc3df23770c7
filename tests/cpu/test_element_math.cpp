// SPDX-License-Identifier: Apache-2.0
// The one-element forms of the shared math (math/*.hpp: x, scale and the element's random word
// in, code out) that a per-thread GPU kernel calls, agree with what the CPU codec's block kernels
// produce, and element_random's lazy low bits give the same decisions as the whole 32-bit word.

#include "../support/generators.hpp"
#include "../support/reference.hpp"

#include <gradcomp/gradcomp.hpp>

#include <catch2/catch.hpp>

using namespace gradcomp;

namespace {
template <class S, class PerElement>
void check(S s, const std::vector<float>& x, std::uint64_t g0, PerElement element) {
  const model_layout layout = model_layout::from_sizes({g0, x.size()});
  std::vector<float> g(g0, 0.0f);
  g.insert(g.end(), x.begin(), x.end());
  codec<S> c(s, layout);
  std::vector<float> q(g.size());
  const stream_key key{99, 5, 2};
  c.apply(cpu, std::span<const float>(g), std::span<float>(q), key);
  const random_stream hi(key.seed, key.stream_word(), random_purpose::rounding);
  const random_stream lo = hi.with_purpose(random_purpose::rounding_low);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::uint64_t gi = g0 + i;
    const math::element_random lazy{hi.bits8(gi), &lo, gi};
    const math::word_random word{test::ref::rnd32(key, gi)};
    REQUIRE(lazy.word() == word.r);
    CAPTURE(i, x[i]);
    REQUIRE(element(x[i], lazy) == q[gi]);
    REQUIRE(element(x[i], word) == q[gi]);
  }
}
} // namespace

TEST_CASE("per-element math equals the block kernels", "[math][element]") {
  for (std::uint64_t seed : test::seeds()) {
    const auto x = test::make_input(777, test::distribution::mixed_scale, seed);
    float m = 0;
    for (float v : x)
      m = std::max(m, std::fabs(v));
    for (std::uint64_t g0 : {0ull, 3ull, 17ull}) {
      check(scheme<natural, layer_span>{}, x, g0, [](float v, const auto& r) {
        return math::natural_decode9(math::natural_encode9(v, r));
      });
      check(scheme<natural, layer_span, natural_codes<8>>{}, x, g0, [](float v, const auto& r) {
        return math::natural_decode8(math::natural_encode8(v, r));
      });
      check(scheme<terngrad, layer_span>{}, x, g0, [m](float v, const auto& r) {
        return math::ternary_decode(math::ternary_encode(v, m, r), m);
      });
      check(scheme<stochastic_rounding<bfloat16>, layer_span>{}, x, g0, [](float v, const auto& r) {
        return to_float(bfloat16{math::stochastic_round_bf16(v, r)});
      });
      check(scheme<stochastic_rounding<half>, layer_span>{}, x, g0, [](float v, const auto& r) {
        return to_float(half{math::stochastic_round_f16(v, r)});
      });
    }
  }
}

TEST_CASE("QSGD's per-element form equals the block kernel", "[math][element][qsgd]") {
  const auto x = test::make_input(500, test::distribution::normal, 4);
  std::vector<double> sq;
  for (float v : x)
    sq.push_back(static_cast<double>(v) * v);
  const auto norm = static_cast<float>(std::sqrt(test::ref::canonical_sum(sq)));
  const unsigned bits = math::qsgd_level_bits(15);
  check(scheme<qsgd, layer_span>{{15}}, x, 11, [norm, bits](float v, const auto& r) {
    return math::qsgd_decode(math::qsgd_encode(v, norm, 15, bits, r), norm, 15, bits);
  });
}

namespace {
/// The bit stream of 64 codes written one bit at a time: the plainest form of the format.
template <unsigned B>
std::vector<std::byte> bitwise_stream(const std::uint32_t* codes) {
  std::vector<std::byte> out(8 * B, std::byte{0});
  for (unsigned j = 0; j < 64; ++j)
    for (unsigned b = 0; b < B; ++b)
      if ((codes[j] >> b) & 1u)
        out[(j * B + b) / 8] |= std::byte{static_cast<unsigned char>(1u << ((j * B + b) % 8))};
  return out;
}
template <unsigned B>
void check_packers(std::mt19937_64& rng) {
  constexpr auto mask = static_cast<std::uint32_t>((std::uint64_t{1} << B) - 1u);
  std::uint32_t codes[64];
  for (int trial = 0; trial < 50; ++trial) {
    for (auto& c : codes)
      c = static_cast<std::uint32_t>(rng()) & mask;
    if (trial == 0)
      std::fill(codes, codes + 64, mask); // every bit set
    const auto want = bitwise_stream<B>(codes);
    std::vector<std::byte> got(8 * B + 8, std::byte{0xAA}); // + a guard the packer must not touch
    if constexpr (detail::byte_packable<B>)
      detail::pack_block_bytes<B>(codes, got.data());
    else if constexpr (detail::octet_packable<B>)
      detail::pack_block_octets<B>(codes, got.data());
    std::uint64_t words[B];
    detail::pack_block<B>(codes, words);
    CAPTURE(B);
    if constexpr (detail::byte_packable<B> || detail::octet_packable<B>) {
      REQUIRE(std::equal(want.begin(), want.end(), got.begin()));
      for (std::size_t i = 8 * B; i < got.size(); ++i)
        REQUIRE(got[i] == std::byte{0xAA});
    }
    for (unsigned w = 0; w < B; ++w)
      REQUIRE(detail::load_le<std::uint64_t>(want.data() + 8 * w) == words[w]);
  }
}
template <unsigned... Bs>
void check_all_packers(std::integer_sequence<unsigned, Bs...>) {
  std::mt19937_64 rng(5);
  (check_packers<Bs + 1>(rng), ...);
}
} // namespace

TEST_CASE("every block packer writes the documented bit stream", "[encoding][pack]") {
  check_all_packers(std::make_integer_sequence<unsigned, 32>{});
}
