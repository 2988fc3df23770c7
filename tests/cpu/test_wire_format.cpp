// SPDX-License-Identifier: Apache-2.0
// The wire format: golden bytes that pin it, exact size formulas, and a decoder that treats every
// byte as hostile (truncated, extended, bit-flipped, re-sealed malicious messages), with outputs
// left untouched on every error (SPECS.md §2.5 C8, D1-D3).

#include "../support/generators.hpp"

#include <gradcomp/gradcomp.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>

using namespace gradcomp;

namespace {

std::vector<std::byte> from_hex(const std::string& h) {
  std::vector<std::byte> out(h.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<std::byte>(std::stoi(h.substr(2 * i, 2), nullptr, 16));
  return out;
}
const std::vector<float> golden_input{0.5f, -2.0f, 0.25f, 1.5f, -0.125f, 3.0f, -1.0f, 0.75f};
model_layout golden_layout() {
  return model_layout::from_sizes({5, 0, 3}, {"w", "e", "b"});
}
const stream_key golden_key{7, 3, 1, role::worker};

template <class S>
std::vector<std::byte> encode(codec<S>& c, const std::vector<float>& g, const stream_key& key) {
  std::vector<std::byte> out(c.template max_encoded_bytes<float>());
  out.resize(c.encode(cpu, std::span<const float>(g), std::span<std::byte>(out), key));
  return out;
}
/// Recomputes the checksum, so a malicious edit reaches the structural checks.
void reseal(std::vector<std::byte>& m) {
  detail::seal_message(m);
}
/// The error decode() throws for m (into fp32, so every check is validate()'s: validate() must
/// throw the same one).
template <class S>
errc decode_error(codec<S>& c, const std::vector<std::byte>& m) {
  std::optional<errc> validated;
  try {
    c.validate(cpu, std::span<const std::byte>(m));
  } catch (const gradcomp::error& e) {
    validated = e.code();
  }
  std::vector<float> out(c.layout().total_size(), 42.0f);
  try {
    c.decode(cpu, std::span<const std::byte>(m), std::span<float>(out));
  } catch (const gradcomp::error& e) {
    for (float v : out)
      REQUIRE(v == 42.0f); // untouched on error
    REQUIRE(validated == e.code());
    return e.code();
  }
  FAIL("decode accepted a message it should reject");
  return errc::invalid_parameter;
}

template <class S>
void check_golden(S s, const std::string& hex) {
  codec c(s, golden_layout());
  const auto msg = encode(c, golden_input, golden_key);
  CAPTURE(S::compressor_type::name);
  if (std::getenv("GRADCOMP_PRINT_GOLDEN") != nullptr) { // after a deliberate format change
    std::printf("%s: ", std::string(S::compressor_type::name).c_str());
    for (std::byte b : msg)
      std::printf("%02x", static_cast<unsigned>(b));
    std::printf("\n");
    return;
  }
  REQUIRE(msg == from_hex(hex));
  // and it decodes
  std::vector<float> out(8);
  c.decode(cpu, std::span<const std::byte>(from_hex(hex)), std::span<float>(out));
}

} // namespace

TEST_CASE("golden messages pin the wire format byte for byte", "[wire][golden]") {
  // A format change must break these on purpose (and bump wire_format_version).
  check_golden(scheme<topk, layer_span>{{0.5}},
               "47434d50030002010201000003000000080000000000000007000000000000001000000300000000"
               "840fd33ed9f42eb2269e3651d2d4ce33050000000000000022000000000000000000000000000000"
               "00000000000000001000000000000000000000000000000003000000000000001c00000000000000"
               "00000000000000000300000000000000020000000000803f0000010003000000003f000000c00000"
               "c03f0000000000000000020000000000803f0200000000000000020000000000803f000001000000"
               "4040000080bf");
  check_golden(scheme<terngrad, layer_span>{},
               "47434d50030006040201000003000000080000000000000007000000000000001000000300000000"
               "782f5c578ae4e3ec1fefaae32b3b8f03050000000000000006000000000000000000000000000000"
               "00000000000000000000000000000000000000000000000003000000000000000500000000000000"
               "00000000000000000000004009000000404019");
  check_golden(scheme<qsgd, flat_span>{{3}},
               "47434d50030007050101000001000000080000000000000007000000000000001000000300000000"
               "507acd0f1c14cff90f01dec9750b1855080000000000000007000000000000000000000000000000"
               "e57b8440495842");
  check_golden(scheme<scaled_sign, layer_span>{},
               "47434d5003000b060201000003000000080000000000000007000000000000001000000300000000"
               "782f5c578ae4e3ecf723d14129f08edc050000000000000005000000000000000000000000000000"
               "00000000000000000000000000000000000000000000000003000000000000000500000000000000"
               "00000000000000000000603f12abaaca3f02");
  check_golden(scheme<natural, layer_span, natural_codes<8>>{},
               "47434d50030009080201000003000000080000000000000007000000000000001000000300000000"
               "782f5c578ae4e3ec9880969af614af92050000000000000005000000000000000000000000000000"
               "00000000000000000000000000000000000000000000000003000000000000000300000000000000"
               "00000000000000006ef06d6fec71ef6f");
}

TEST_CASE("the header and directory follow the documented layout", "[wire]") {
  codec c(scheme<topk, layer_span>{{0.5}}, golden_layout());
  const auto m = encode(c, golden_input, golden_key);
  const message_info info = inspect_message(m);
  REQUIRE(info.version == wire_format_version);
  REQUIRE(info.compressor == compressor_id::topk);
  REQUIRE(info.encoding == encoding_id::sparse_coo_f32);
  REQUIRE(info.granularity == granularity_id::layer);
  REQUIRE(info.value_type == value_type_id::f32);
  REQUIRE(info.total_elements == 8);
  REQUIRE(info.seed == 7);
  REQUIRE(info.stream_word == golden_key.stream_word());
  REQUIRE(info.spans.size() == 3);
  REQUIRE(info.spans[0].offset == wire_header_bytes + 3 * wire_directory_entry_bytes);
}

namespace {
template <class S>
void check_sizes(S s, const model_layout& layout, std::size_t bits_per_elem,
                 std::size_t scales_per_span, bool sign_plane = false) {
  codec c(s, layout);
  const auto x = test::make_input(layout.total_size(), test::distribution::normal, 3);
  const auto m = encode(c, x, {});
  REQUIRE(m.size() <= c.template max_encoded_bytes<float>());
  std::size_t want = wire_header_bytes + c.spans().size() * wire_directory_entry_bytes;
  for (const auto& sp : c.spans()) {
    // ceil(n bits / 8), or ceil(n (bits - 1) / 8) + ceil(n / 8) with a sign plane
    const std::size_t magnitude_bits = sign_plane ? bits_per_elem - 1 : bits_per_elem;
    want += (sp.size * magnitude_bits + 7) / 8 + (sign_plane ? (sp.size + 7) / 8 : 0) +
            4 * (sp.size > 0 ? scales_per_span : 0);
  }
  CAPTURE(S::compressor_type::name, S::granularity_type::name);
  REQUIRE(m.size() == want);
}
} // namespace

TEST_CASE("payload sizes follow the documented formulas exactly", "[wire][size]") {
  const model_layout l = test::odd_layout();
  check_sizes(scheme<terngrad, layer_span>{}, l, 2, 1);
  check_sizes(scheme<terngrad, flat_span>{}, l, 2, 1);
  check_sizes(scheme<qsgd, layer_span>{{255}}, l, 9, 1, true);
  check_sizes(scheme<qsgd, layer_span>{{256}}, l, 10, 1, true);
  check_sizes(scheme<qsgd, layer_span>{{127}}, l, 8, 1, true);
  check_sizes(scheme<qsgd, flat_span>{{1}}, l, 2, 1, true);
  check_sizes(scheme<sign_sgd, layer_span>{}, l, 1, 0);
  check_sizes(scheme<scaled_sign, bucket_span>{{}, {100}}, l, 1, 1);
  check_sizes(scheme<natural, layer_span>{}, l, 9, 0, true);
  check_sizes(scheme<natural, layer_span, natural_codes<8>>{}, l, 8, 0);
  check_sizes(scheme<stochastic_rounding<bfloat16>, layer_span>{}, l, 16, 0);
  check_sizes(scheme<identity, flat_span>{}, l, 32, 0);
  check_sizes(scheme<identity, flat_span, dense<half>>{}, l, 16, 0);
  // QSGD buckets: one norm per bucket
  {
    codec c(scheme<qsgd, flat_span>{{15, 128}}, model_layout::from_sizes({1000}));
    const auto m = encode(c, test::make_input(1000, test::distribution::normal, 1), {});
    REQUIRE(m.size() == wire_header_bytes + wire_directory_entry_bytes + 8 * 4 + 625);
  }
  // Sparse: 16 + k (W + sizeof(V)), W from n; implied indices omit k W.
  for (std::size_t n : {1000ul, 65536ul, 65537ul}) {
    codec c(scheme<topk, flat_span>{{0.01}}, model_layout::from_sizes({n}));
    const auto m = encode(c, test::make_input(n, test::distribution::normal, 1), {});
    const std::size_t k = topk{0.01}.count(n), w = n <= 65536 ? 2 : 4;
    REQUIRE(m.size() == wire_header_bytes + wire_directory_entry_bytes + 16 + k * (w + 4));
    codec h(scheme<topk, flat_span, sparse_coo<half>>{{0.01}}, model_layout::from_sizes({n}));
    REQUIRE(encode(h, test::make_input(n, test::distribution::normal, 1), {}).size() ==
            wire_header_bytes + wire_directory_entry_bytes + 16 + k * (w + 2));
    codec r(scheme<random_k, flat_span>{{0.01, false, true}}, model_layout::from_sizes({n}));
    REQUIRE(encode(r, test::make_input(n, test::distribution::normal, 1), {}).size() ==
            wire_header_bytes + wire_directory_entry_bytes + 16 + k * 4);
  }
}

TEST_CASE("decoders reject truncated, extended and bit-flipped messages", "[wire][robust]") {
  codec c(scheme<qsgd, layer_span>{{15}}, test::odd_layout());
  const auto m =
      encode(c, test::make_input(c.layout().total_size(), test::distribution::normal, 5), {});
  for (std::size_t len = 0; len < m.size(); len += 1 + len / 16) {
    std::vector<std::byte> t(m.begin(), m.begin() + static_cast<std::ptrdiff_t>(len));
    const errc e = decode_error(c, t);
    REQUIRE((e == errc::truncated_message || e == errc::checksum_mismatch || e == errc::bad_magic));
  }
  auto longer = m;
  longer.push_back(std::byte{0});
  REQUIRE(decode_error(c, longer) == errc::checksum_mismatch);
  reseal(longer);
  REQUIRE(decode_error(c, longer) == errc::corrupt_payload); // trailing bytes
  std::mt19937_64 rng(11);
  for (int i = 0; i < 500; ++i) {
    auto f = m;
    const std::size_t pos = rng() % f.size();
    f[pos] ^= static_cast<std::byte>(1u << (rng() % 8));
    const errc e = decode_error(c, f);
    REQUIRE(
        (e == errc::checksum_mismatch || e == errc::bad_magic || e == errc::unsupported_version));
  }
}

/// The checksum by its straightforward definition: 1 KiB blocks, the field zeroed, each block's
/// lanes one row after another, digests summed mod 2^64.
static std::uint64_t checksum_by_definition(std::vector<std::byte> z) {
  for (std::size_t i = 48; i < 56; ++i)
    z.at(i) = std::byte{0};
  std::uint64_t sum = 0;
  for (std::size_t b = 0; b * 1024 < z.size(); ++b) {
    detail::checksum_lanes h;
    const std::size_t n = std::min<std::size_t>(1024, z.size() - 1024 * b);
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
      std::uint64_t w[4];
      for (int l = 0; l < 4; ++l)
        w[l] = detail::checksum_word(z.data() + 1024 * b, i + 8 * l, n);
      h.row(w);
    }
    for (; i < n; i += 8)
      h.tail(detail::checksum_word(z.data() + 1024 * b, i, n));
    sum += h.digest(b, n);
  }
  return detail::checksum_finish(sum, z.size());
}

TEST_CASE("the checksum sees swapped blocks and matches its block definition", "[wire][robust]") {
  codec c(scheme<qsgd, layer_span>{{255}}, test::odd_layout());
  const auto m =
      encode(c, test::make_input(c.layout().total_size(), test::distribution::normal, 6), {});
  REQUIRE(m.size() > 3 * detail::checksum_block_bytes);
  REQUIRE(detail::load_le<std::uint64_t>(m.data() + 48) == checksum_by_definition(m));
  auto swapped = m; // blocks 1 and 2 exchanged: same multiset of bytes, other order
  std::swap_ranges(swapped.begin() + 1024, swapped.begin() + 2048, swapped.begin() + 2048);
  REQUIRE(decode_error(c, swapped) == errc::checksum_mismatch);
}

TEST_CASE("large messages get the defined checksum from every thread count", "[wire][robust]") {
  // blocks split among threads (backend/cpu/checksum_blocks.hpp)
  const model_layout l = model_layout::from_sizes({5, 700001, 3});
  codec c(scheme<identity, layer_span>{}, l);
  const auto x = test::make_input(l.total_size(), test::distribution::normal, 12);
  const auto m = encode(c, x, {});
  REQUIRE(m.size() % detail::checksum_block_bytes != 0);
  REQUIRE(detail::load_le<std::uint64_t>(m.data() + 48) == checksum_by_definition(m));
  for (unsigned threads : {2u, 3u}) {
    std::vector<std::byte> mt(m.size());
    (void)c.encode(cpu_threads(threads), std::span<const float>(x), std::span<std::byte>(mt), {});
    REQUIRE(mt == m);
    std::vector<float> out(x.size());
    c.decode(cpu_threads(threads), std::span<const std::byte>(m), std::span<float>(out));
    REQUIRE(out == x);
  }
  // the block sums alone, over ranges that start and end anywhere
  const std::size_t blocks = (m.size() + 1023) / 1024;
  for (std::uint64_t first : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{3}}) {
    for (std::uint64_t end :
         {std::uint64_t{first}, first + 5, first + 8, first + 17, std::uint64_t{blocks}}) {
      std::uint64_t expect = 0;
      for (std::uint64_t b = first; b < end; ++b) {
        expect += detail::checksum_block(m.data() + 1024 * b,
                                         std::min<std::size_t>(1024, m.size() - 1024 * b), b);
      }
      for (unsigned threads : {1u, 2u, 3u}) {
        CAPTURE(first, end, threads);
        REQUIRE(detail::run<detail::sum_checksum_blocks>(cpu_threads(threads), m.data(), m.size(),
                                                         first, end) == expect);
      }
    }
  }
  auto flipped = m;
  flipped[m.size() / 2] ^= std::byte{1};
  std::vector<float> out(x.size());
  REQUIRE_THROWS_AS(
      c.decode(cpu_threads(2), std::span<const std::byte>(flipped), std::span<float>(out)),
      gradcomp::error);
  REQUIRE(decode_error(c, flipped) == errc::checksum_mismatch);
}

namespace {
/// The error of decoding m with exec (none: std::nullopt); out must stay untouched on error.
template <class S>
std::optional<errc> decode_error_with(codec<S>& c, const cpu_policy& exec,
                                      const std::vector<std::byte>& m) {
  std::vector<float> out(c.layout().total_size(), 42.0f);
  try {
    c.decode(exec, std::span<const std::byte>(m), std::span<float>(out));
  } catch (const gradcomp::error& e) {
    REQUIRE(out == std::vector<float>(out.size(), 42.0f));
    return e.code();
  }
  return std::nullopt;
}

/// encode() at 1, 2 and 3 threads: the same bytes, sealed with the defined checksum (the dense
/// coders hash the checksum blocks they write as they go; detail/prehashed_blocks.hpp). decode()
/// at each thread count (it hashes the blocks as it validates them) takes the message and finds
/// a flipped bit anywhere: in the header, in the codes' first, middle and last block.
template <class S, class T = float>
void check_checksum_while_writing(S s, const model_layout& l, std::uint64_t seed) {
  codec c(s, l);
  const auto xf = test::make_input(l.total_size(), test::distribution::normal, seed);
  std::vector<T> x(xf.size());
  std::transform(xf.begin(), xf.end(), x.begin(), [](float v) { return from_float<T>(v); });
  std::vector<std::byte> first;
  for (unsigned threads : {1u, 2u, 3u}) {
    CAPTURE(threads);
    std::vector<std::byte> m(c.template max_encoded_bytes<T>());
    m.resize(
        c.encode(cpu_threads(threads), std::span<const T>(x), std::span<std::byte>(m), {5, 2}));
    REQUIRE(m.size() > 8 * detail::checksum_block_bytes);
    REQUIRE(detail::load_le<std::uint64_t>(m.data() + 48) == checksum_by_definition(m));
    if (first.empty()) {
      first = m;
    }
    REQUIRE(m == first);
    REQUIRE_FALSE(decode_error_with(c, cpu_threads(threads), m).has_value());
    for (const std::size_t at : {std::size_t{20}, std::size_t{2000}, m.size() / 2, m.size() - 1}) {
      auto flipped = m;
      flipped[at] ^= std::byte{0x10};
      CAPTURE(at);
      REQUIRE(decode_error_with(c, cpu_threads(threads), flipped) == errc::checksum_mismatch);
    }
  }
}
} // namespace

TEST_CASE("checksum blocks hashed while the codes are written give the defined checksum",
          "[wire][robust]") {
  // spans whose codes start and end inside checksum blocks, long enough for several thread parts
  const model_layout l = model_layout::from_sizes({5, 300001, 77, 140003, 3, 66000});
  const model_layout flat = model_layout::from_sizes({l.total_size()});
  check_checksum_while_writing(scheme<identity, layer_span>{}, l, 21);
  check_checksum_while_writing(scheme<identity, flat_span>{}, flat, 22);
  check_checksum_while_writing<scheme<identity, layer_span>, bfloat16>({}, l, 23);
  check_checksum_while_writing(scheme<qsgd, layer_span>{{15}}, l, 24); // magnitudes + sign plane
  check_checksum_while_writing(scheme<qsgd, bucket_span>{{255, 100}, {70000}}, l, 25);
  check_checksum_while_writing(scheme<terngrad, flat_span>{}, flat, 26);
  check_checksum_while_writing(scheme<sign_sgd, layer_span>{}, l, 27);
  check_checksum_while_writing(scheme<natural, flat_span>{}, flat, 28);
  // a message whose length is a whole number of blocks: its last block is hashed by a writer
  // (a 56-byte header, one 24-byte directory entry, 4 bytes per element: 1 MiB)
  const model_layout whole = model_layout::from_sizes({256 * 1024 - 20});
  codec c(scheme<identity, flat_span>{}, whole);
  const auto x = test::make_input(whole.total_size(), test::distribution::normal, 29);
  const auto m = encode(c, x, {});
  CAPTURE(m.size());
  REQUIRE(detail::load_le<std::uint64_t>(m.data() + 48) == checksum_by_definition(m));
}

TEST_CASE("hostile but well-sealed messages get named errors", "[wire][robust]") {
  const model_layout l = model_layout::from_sizes({100, 70000});
  const auto x = test::make_input(l.total_size(), test::distribution::normal, 9);
  const std::size_t p0 = wire_header_bytes + 2 * wire_directory_entry_bytes; // first payload
  auto edit = [](std::vector<std::byte> m, std::size_t at, auto value) {
    detail::store_le(m.data() + at, value);
    reseal(m);
    return m;
  };
  SECTION("sparse") {
    codec c(scheme<topk, layer_span>{{0.1}}, l);
    const auto m = encode(c, x, {});
    REQUIRE(decode_error(c, edit(m, p0, std::uint64_t{101})) == errc::corrupt_payload); // k > n
    REQUIRE(decode_error(c, edit(m, p0, std::uint64_t{9})) == errc::corrupt_payload); // k != count
    REQUIRE(decode_error(c, edit(m, p0 + 8, std::uint8_t{4})) == errc::corrupt_payload); // width
    REQUIRE(decode_error(c, edit(m, p0 + 9, std::uint8_t{2})) == errc::corrupt_payload); // flags
    REQUIRE(decode_error(c, edit(m, p0 + 12, 2.0f)) == errc::corrupt_payload);           // scale
    REQUIRE(decode_error(c, edit(m, p0 + 16, std::uint16_t{100})) ==
            errc::corrupt_payload); // idx >= n
    REQUIRE(decode_error(c, edit(m, p0 + 18, std::uint16_t{0})) ==
            errc::corrupt_payload); // not increasing
    REQUIRE(decode_error(c, edit(m, p0 + 16 + 10 * 2, NAN)) == errc::corrupt_payload); // NaN value
  }
  SECTION("codes and scales") {
    codec c(scheme<terngrad, layer_span>{}, l);
    const auto m = encode(c, x, {});
    REQUIRE(decode_error(c, edit(m, p0, NAN)) == errc::corrupt_payload);
    REQUIRE(decode_error(c, edit(m, p0, -1.0f)) == errc::corrupt_payload);
    REQUIRE(decode_error(c, edit(m, p0 + 4, std::uint8_t{0xff})) ==
            errc::corrupt_payload);            // code 3
    codec q(scheme<qsgd, layer_span>{{5}}, l); // 3 level bits: 6 and 7 are invalid levels
    const auto mq = encode(q, x, {});
    REQUIRE(decode_error(q, edit(mq, p0 + 4, std::uint8_t{0x07})) == errc::corrupt_payload);
    // a sign bit on a zero level: levels of elements 0-1 zeroed, then element 0's sign set (the
    // sign plane follows the 100 3-bit levels: 38 bytes)
    const auto zero_levels = edit(mq, p0 + 4, std::uint8_t{0x00});
    REQUIRE(decode_error(q, edit(zero_levels, p0 + 4 + 38, std::uint8_t{0x01})) ==
            errc::corrupt_payload);
    codec s(scheme<sign_sgd, layer_span>{}, model_layout::from_sizes({3}));
    auto ms = encode(s, {1.0f, -1.0f, 1.0f}, {});
    REQUIRE(decode_error(s, edit(ms, wire_header_bytes + wire_directory_entry_bytes,
                                 std::uint8_t{0xf2})) == errc::corrupt_payload); // padding bits
  }
  SECTION("frame") {
    codec c(scheme<terngrad, layer_span>{}, l);
    const auto m = encode(c, x, {});
    REQUIRE(decode_error(c, edit(m, 4, std::uint16_t{wire_format_version + 1})) ==
            errc::unsupported_version);
    REQUIRE(decode_error(c, edit(m, 4, std::uint16_t{1})) == errc::unsupported_version);
    auto bad_magic = m;
    bad_magic[0] = std::byte{'X'};
    REQUIRE(decode_error(c, bad_magic) == errc::bad_magic);
    REQUIRE(decode_error(c, edit(m, 6, std::uint8_t{7})) == errc::scheme_mismatch);
    REQUIRE(decode_error(c, edit(m, 9, std::uint8_t{9})) == errc::corrupt_payload);
    REQUIRE(decode_error(c, edit(m, 12, std::uint32_t{0xffffffff})) == errc::truncated_message);
    REQUIRE(decode_error(c, edit(m, 16, std::uint64_t{5})) == errc::corrupt_payload);
    REQUIRE(decode_error(c, edit(m, 40, std::uint64_t{5})) == errc::scheme_mismatch);
    REQUIRE(decode_error(c, edit(m, wire_header_bytes + 16, std::uint8_t{1})) ==
            errc::scheme_mismatch); // span declared raw
    REQUIRE(decode_error(c, edit(m, wire_header_bytes + 16, std::uint8_t{7})) ==
            errc::corrupt_payload);
    REQUIRE(decode_error(c, edit(m, wire_header_bytes + 8, std::uint64_t{1} << 60)) ==
            errc::truncated_message);
  }
  SECTION("another scheme, layout or parameters") {
    codec c(scheme<qsgd, layer_span>{{15}}, l);
    const auto m = encode(c, x, {});
    codec other_levels(scheme<qsgd, layer_span>{{31}}, l);
    REQUIRE(decode_error(other_levels, m) == errc::scheme_mismatch);
    codec other_gran(scheme<qsgd, flat_span>{{15}}, l);
    REQUIRE(decode_error(other_gran, m) == errc::scheme_mismatch);
    codec other_layout(scheme<qsgd, layer_span>{{15}}, model_layout::from_sizes({101, 69999}));
    REQUIRE(decode_error(other_layout, m) == errc::layout_mismatch);
    codec other_op(scheme<terngrad, layer_span>{}, l);
    REQUIRE(decode_error(other_op, m) == errc::scheme_mismatch);
  }
}

TEST_CASE("a stored value times its span's value scale must stay finite", "[wire][robust]") {
  // unbiased random-k scales every stored value by n/k = 10 at decode: 3e38 is finite, 3e39 not
  const model_layout l = model_layout::from_sizes({100});
  const std::vector<float> ones(100, 1.0f);
  const std::size_t p0 = wire_header_bytes + wire_directory_entry_bytes + 16; // after the header
  auto check_rejected = [&](auto s, std::size_t first_value) {
    codec c(s, l);
    auto m = encode(c, ones, stream_key{1, 0});
    detail::store_le<float>(m.data() + first_value, 3.0e38f);
    reseal(m);
    REQUIRE(decode_error(c, m) == errc::corrupt_payload);
    // the master refuses it too, and adds nothing of it to the sum
    using S = decltype(s);
    master<S, scheme<identity, flat_span>> ps(s, {}, l, 1, {1});
    ps.begin(0);
    REQUIRE_THROWS_AS(ps.receive(cpu, std::span<const std::byte>(m)), gradcomp::error);
    for (float v : ps.sum()) {
      REQUIRE(v == 0.0f);
    }
  };
  SECTION("indices sent") {
    check_rejected(scheme<random_k, flat_span>{{0.1, true, false}}, p0 + 10 * 2);
  }
  SECTION("indices implied (shared seed)") {
    check_rejected(scheme<random_k, flat_span>{{0.1, true, true}}, p0);
  }
  SECTION("bf16 values, which hold 3e38") {
    check_rejected(scheme<random_k, layer_span, sparse_coo<bfloat16>>{{0.1, true, false}},
                   p0 + 10 * 2);
  }
}

namespace {
/// Decodes `m` into `out` and expects value_out_of_range naming `where` with out untouched.
template <class S, class T>
void expect_out_of_range(codec<S>& c, const std::vector<std::byte>& m, std::vector<T> out, bool add,
                         const std::string& where) {
  const std::vector<T> before = out;
  try {
    if (add) {
      c.decode_add(cpu, std::span<const std::byte>(m), std::span<T>(out));
    } else {
      c.decode(cpu, std::span<const std::byte>(m), std::span<T>(out));
    }
    FAIL("an overflowing decode was accepted");
  } catch (const gradcomp::error& e) {
    CAPTURE(e.what());
    REQUIRE(e.code() == errc::value_out_of_range);
    REQUIRE_THAT(e.what(), Catch::Contains(where));
  }
  REQUIRE(std::memcmp(out.data(), before.data(), out.size() * sizeof(T)) == 0);
}
} // namespace

TEST_CASE("a decode never writes Inf into a 16-bit output or a sum", "[wire][range]") {
  // element 3 of the second layer is 1e6: finite in fp32, beyond fp16's 65504 (and so are the
  // scales it makes: TernGrad's max, QSGD's norm, scaled sign's mean magnitude)
  const model_layout l = model_layout::from_sizes({4, 6}, {"conv", "fc"});
  std::vector<float> x{0.5f, -0.25f, 1.0f, 2.0f, 1.0f, -3.0f, 2.0f, 1e6f, 0.5f, 4.0f};
  const std::vector<half> sentinel(l.total_size(), to_half(7.0f));
  auto check = [&](auto s, const std::string& where) {
    codec c(s, l);
    CAPTURE(std::string(decltype(s)::compressor_type::name));
    const auto m = encode(c, x, stream_key{5, 2});
    expect_out_of_range(c, m, sentinel, false, where);
    expect_out_of_range(c, m, sentinel, true, where);
    // the same message decodes into fp32, and into fp16 once the big value is gone
    std::vector<float> f(l.total_size());
    c.decode(cpu, std::span<const std::byte>(m), std::span<float>(f));
    for (float v : f) {
      REQUIRE_FALSE(detail::is_non_finite(v));
    }
  };
  check(scheme<identity, layer_span>{}, "layer 'fc' (span 1) at element 3");
  check(scheme<identity, flat_span, dense<bfloat16>>{}, "span 0 at element 7");
  check(scheme<topk, layer_span>{{0.5}}, "layer 'fc' (span 1) at element 3");
  check(scheme<random_k, flat_span>{{1.0, true, true}}, "span 0 at element 7");
  check(scheme<threshold_v, layer_span, sparse_coo<bfloat16>>{{0.1}}, "element 3");
  check(scheme<adaptive_threshold, layer_span>{}, "layer 'fc' (span 1) at element 3");
  check(scheme<terngrad, layer_span>{}, "layer 'fc' (span 1)");
  check(scheme<qsgd, bucket_span>{{255, 4}, {5}}, "span 1");
  check(scheme<scaled_sign, flat_span>{}, "span 0 at element 0");
  check(scheme<natural, layer_span>{}, "layer 'fc' (span 1) at element 3");
  check(scheme<stochastic_rounding<bfloat16>, layer_span>{}, "layer 'fc' (span 1) at element 3");
  check(scheme<compose<topk, qsgd>, layer_span>{{{0.5}, {15}}}, "layer 'fc' (span 1)");
  scheme<terngrad, layer_span> raw_fc{};
  raw_fc.rules.identity_below = 8; // fc travels raw
  check(raw_fc, "layer 'fc' (span 1) at element 3");

  SECTION("bf16 outputs: fp32 values beyond bf16's largest finite value") {
    codec c(scheme<identity, layer_span>{}, l);
    auto big = x;
    big[7] = 3.4e38f;
    const auto m = encode(c, big, {});
    expect_out_of_range(c, m, std::vector<bfloat16>(l.total_size()), false,
                        "layer 'fc' (span 1) at element 3");
  }
  SECTION("sums: decode_add into fp32 refuses a sum that overflows, adds what fits") {
    codec c(scheme<identity, flat_span>{}, l);
    auto big = x;
    big[7] = 3.0e38f;
    const auto m = encode(c, big, {});
    std::vector<float> sum(l.total_size(), 0.0f);
    c.decode_add(cpu, std::span<const std::byte>(m), std::span<float>(sum));
    expect_out_of_range(c, m, sum, true, "span 0 at element 7");
    // a NaN already in the sum is the caller's, not an overflow of this message
    auto with_nan = sum;
    with_nan[0] = NAN;
    with_nan[7] = 0.0f;
    c.decode_add(cpu, std::span<const std::byte>(m), std::span<float>(with_nan));
    REQUIRE(std::isnan(with_nan[0]));
    REQUIRE(with_nan[7] == 3.0e38f);
  }
  SECTION("a sum the bound cannot settle is checked element by element") {
    // max |held| + max |decoded| exceeds 65504, but not at one element: the decode goes through
    codec c(scheme<identity, flat_span>{}, l);
    auto small = x;
    small[7] = 6000.0f;
    const auto m = encode(c, small, {});
    std::vector<half> held(l.total_size(), to_half(0.0f));
    held[0] = to_half(60000.0f);
    c.decode_add(cpu, std::span<const std::byte>(m), std::span<half>(held));
    REQUIRE(to_float(held[0]) == to_float(to_half(60000.5f)));
    REQUIRE(to_float(held[7]) == 6000.0f);
    held[7] = to_half(60000.0f); // now element 7 overflows
    expect_out_of_range(c, m, held, true, "span 0 at element 7");
  }
}

TEST_CASE("random re-sealed byte edits never crash the decoders", "[wire][robust][fuzz]") {
  std::mt19937_64 rng(3);
  const model_layout l = test::odd_layout();
  const auto x = test::make_input(l.total_size(), test::distribution::heavy_tailed, 2);
  auto fuzz = [&](auto c) {
    const auto m = encode(c, x, {1, 2});
    std::vector<float> out(l.total_size());
    int accepted = 0;
    for (int i = 0; i < 300; ++i) {
      auto f = m;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits; ++e)
        f[rng() % f.size()] = static_cast<std::byte>(rng());
      reseal(f);
      try {
        c.decode(cpu, std::span<const std::byte>(f), std::span<float>(out));
        ++accepted;
        for (float v : out)
          REQUIRE_FALSE(detail::is_non_finite(v));
      } catch (const gradcomp::error&) {
      }
    }
    return accepted;
  };
  fuzz(codec(scheme<topk, layer_span>{{0.2}}, l));
  fuzz(codec(scheme<random_k, layer_span>{{0.2, true, true}}, l));
  fuzz(codec(scheme<threshold_v, flat_span, sparse_coo<bfloat16>>{{0.5}}, l));
  fuzz(codec(scheme<terngrad, layer_span>{}, l));
  fuzz(codec(scheme<qsgd, bucket_span>{{7, 16}, {100}}, l));
  fuzz(codec(scheme<natural, layer_span, natural_codes<8>>{}, l));
  fuzz(codec(scheme<stochastic_rounding<half>, layer_span>{}, l));
  scheme<identity, layer_span> with_raw{};
  with_raw.rules.identity_below = 100;
  fuzz(codec(with_raw, l));
  SUCCEED();
}

TEST_CASE("encode leaves the output untouched when it fails", "[wire][atomicity]") {
  const model_layout l = model_layout::from_sizes({10, 10});
  codec c(scheme<topk, layer_span>{{0.5}}, l);
  std::vector<float> x(20, 1.0f);
  x[15] = NAN;
  std::vector<std::byte> out(c.max_encoded_bytes<float>(), std::byte{0xAB});
  try {
    c.encode(cpu, std::span<const float>(x), std::span<std::byte>(out), {});
    FAIL("NaN accepted");
  } catch (const gradcomp::error& e) {
    REQUIRE(e.code() == errc::non_finite_input);
    REQUIRE(std::string(e.what()).find("layer1") != std::string::npos);
    REQUIRE(std::string(e.what()).find("element 5") != std::string::npos);
  }
  for (std::byte b : out)
    REQUIRE(b == std::byte{0xAB});
  x[15] = 1.0f;
  std::vector<std::byte> small(50, std::byte{0xAB});
  REQUIRE_THROWS_AS(c.encode(cpu, std::span<const float>(x), std::span<std::byte>(small), {}),
                    gradcomp::error);
  for (std::byte b : small)
    REQUIRE(b == std::byte{0xAB});
  std::vector<float> wrong(19);
  REQUIRE_THROWS_AS(c.encode(cpu, std::span<const float>(wrong), std::span<std::byte>(out), {}),
                    gradcomp::error);
}
