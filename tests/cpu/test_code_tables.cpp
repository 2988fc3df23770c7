// SPDX-License-Identifier: Apache-2.0
// Table decoding (backend/cpu/code_tables.hpp): a span long enough to decode a byte of codes at a
// time gives exactly the plain reference's values in every decode mode (into fp32; into fp16,
// which measures magnitudes first; added to what the output holds), beside a short span that
// decodes element by element, and an invalid code deep in it is named by its element. Sign,
// scaled sign, TernGrad and QSGD with 8-15 levels decode through tables; natural and QSGD with
// 255 levels (a code per byte) element by element, and are checked alike.

#include "../support/generators.hpp"
#include "../support/reference.hpp"

#include <gradcomp/gradcomp.hpp>

#include <catch2/catch.hpp>

#include <cstring>
#include <string>

using namespace gradcomp;
namespace ref = gradcomp::test::ref;

namespace {

constexpr std::size_t long_span = 70001; // past every table's threshold; a partial last block
constexpr std::size_t short_span = 100;  // below every threshold
const stream_key key{11, 4, 2, role::worker};

model_layout two_spans() {
  return model_layout::from_sizes({long_span, short_span});
}
std::vector<float> gradient() {
  return test::make_input(long_span + short_span, test::distribution::normal, 21);
}

template <class S>
std::vector<std::byte> encode(codec<S>& c, const std::vector<float>& g) {
  std::vector<std::byte> out(c.template max_encoded_bytes<float>());
  out.resize(c.encode(cpu, std::span<const float>(g), std::span<std::byte>(out), key));
  return out;
}

std::uint32_t bits(float v) {
  return detail::bit_cast<std::uint32_t>(v);
}

/// Decodes the scheme's message of gradient() in every mode and compares each element with
/// reference(span values, span's first global index), bit for bit.
template <class S, class Reference>
void check_against_reference(S s, Reference reference) {
  codec c(s, two_spans());
  const auto x = gradient();
  const auto msg = encode(c, x);
  std::vector<float> want = reference(std::vector<float>(x.begin(), x.begin() + long_span), 0);
  const auto tail = reference(std::vector<float>(x.begin() + long_span, x.end()), long_span);
  want.insert(want.end(), tail.begin(), tail.end());

  std::vector<float> out(x.size(), -7.0f);
  c.decode(cpu, std::span<const std::byte>(msg), std::span<float>(out));
  std::vector<half> out16(x.size());
  c.decode(cpu, std::span<const std::byte>(msg), std::span<half>(out16));
  std::vector<float> sum(x.size());
  for (std::size_t i = 0; i < sum.size(); ++i)
    sum[i] = 0.25f * static_cast<float>(i % 13) - 1.0f;
  const std::vector<float> before = sum;
  c.decode_add(cpu, std::span<const std::byte>(msg), std::span<float>(sum));
  for (std::size_t i = 0; i < x.size(); ++i) {
    CAPTURE(S::compressor_type::name, i, x[i], want[i], out[i]);
    REQUIRE(bits(out[i]) == bits(want[i]));
    REQUIRE(bits(to_float(out16[i])) == bits(to_float(from_float<half>(want[i]))));
    REQUIRE(bits(sum[i]) == bits(before[i] + want[i]));
  }
}

/// The error decoding m into T throws (a corrupt payload).
template <class T, class S>
std::string decode_error_into(codec<S>& c, const std::vector<std::byte>& m) {
  std::vector<T> out(c.layout().total_size());
  try {
    c.decode(cpu, std::span<const std::byte>(m), std::span<T>(out));
  } catch (const gradcomp::error& e) {
    REQUIRE(e.code() == errc::corrupt_payload);
    return e.what();
  }
  FAIL("a message with an invalid code decoded");
  return {};
}
/// The error decoding m throws, into fp32 and into fp16 (the measuring validation); both must
/// agree.
template <class S>
std::string decode_error(codec<S>& c, const std::vector<std::byte>& m) {
  const std::string what = decode_error_into<float>(c, m);
  REQUIRE(decode_error_into<half>(c, m) == what);
  return what;
}

/// Span 0's payload offset in a message of two_spans().
constexpr std::size_t p0 = wire_header_bytes + 2 * wire_directory_entry_bytes;

/// Sets bits [bit, bit + width) of the message's byte stream at `offset` to `value`, reseals.
std::vector<std::byte> set_bits(std::vector<std::byte> m, std::size_t offset, std::size_t bit,
                                unsigned width, unsigned value) {
  for (unsigned b = 0; b < width; ++b) {
    const std::size_t at = offset + (bit + b) / 8;
    const auto mask = static_cast<std::byte>(1u << ((bit + b) % 8));
    m[at] = ((value >> b) & 1u) != 0 ? (m[at] | mask) : (m[at] & ~mask);
  }
  detail::seal_message(m);
  return m;
}

bool names_element(const std::string& what, std::size_t e) {
  return what.find("invalid code at element " + std::to_string(e)) != std::string::npos;
}

} // namespace

TEST_CASE("long spans decode through code tables exactly as the reference", "[codes][table]") {
  check_against_reference(
      scheme<sign_sgd, layer_span>{},
      [](const std::vector<float>& xs, std::uint64_t) { return ref::sign(xs, false); });
  check_against_reference(
      scheme<scaled_sign, layer_span>{},
      [](const std::vector<float>& xs, std::uint64_t) { return ref::sign(xs, true); });
  check_against_reference(scheme<terngrad, layer_span>{},
                          [](const std::vector<float>& xs, std::uint64_t g0) {
                            return ref::terngrad(xs, ref::terngrad_scale(xs, false, 2.5), key, g0);
                          });
  for (std::uint32_t s : {15u, 255u}) {
    CAPTURE(s);
    check_against_reference(scheme<qsgd, layer_span>{{s}},
                            [s](const std::vector<float>& xs, std::uint64_t g0) {
                              return ref::qsgd(xs, s, 0, key, g0);
                            });
  }
  check_against_reference(
      scheme<natural, layer_span>{},
      [](const std::vector<float>& xs, std::uint64_t g0) { return ref::natural(xs, key, g0, 9); });
  check_against_reference(
      scheme<natural, layer_span, natural_codes<8>>{},
      [](const std::vector<float>& xs, std::uint64_t g0) { return ref::natural(xs, key, g0, 8); });
}

TEST_CASE("an invalid code deep in a long span is named by its element", "[codes][table]") {
  const auto x = gradient();
  for (std::size_t e : {std::size_t{0}, std::size_t{50001}, long_span - 1}) {
    CAPTURE(e);
    SECTION("TernGrad: code 3") {
      codec c(scheme<terngrad, layer_span>{}, two_spans());
      const auto m = set_bits(encode(c, x), p0 + 4, 2 * e, 2, 3u);
      REQUIRE(names_element(decode_error(c, m), e));
    }
    SECTION("QSGD s = 15: a sign on level 0") {
      codec c(scheme<qsgd, layer_span>{{15}}, two_spans());
      auto m = set_bits(encode(c, x), p0 + 4, 4 * e, 4, 0u);
      m = set_bits(m, p0 + 4 + detail::packed_bytes(long_span, 4u), e, 1, 1u);
      REQUIRE(names_element(decode_error(c, m), e));
    }
    SECTION("QSGD s = 200: level 201") {
      codec c(scheme<qsgd, layer_span>{{200}}, two_spans());
      const auto m = set_bits(encode(c, x), p0 + 4, 8 * e, 8, 201u);
      REQUIRE(names_element(decode_error(c, m), e));
    }
    SECTION("natural, 9 bits: exponent 255") {
      codec c(scheme<natural, layer_span>{}, two_spans());
      const auto m = set_bits(encode(c, x), p0, 8 * e, 8, 255u);
      REQUIRE(names_element(decode_error(c, m), e));
    }
    SECTION("natural, 8 bits: a sign on zero") {
      codec c(scheme<natural, layer_span, natural_codes<8>>{}, two_spans());
      const auto m = set_bits(encode(c, x), p0, 8 * e, 8, 0x80u);
      REQUIRE(names_element(decode_error(c, m), e));
    }
  }
}
