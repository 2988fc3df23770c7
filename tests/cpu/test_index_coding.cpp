// SPDX-License-Identifier: Apache-2.0
// Index codings of sparse spans (encoding/index_coding.hpp): Elias-Fano against a bit-by-bit
// reference, its size against the information limit, canonical bytes (every accepted section is
// the encoding of what it decodes to), every hostile section refused by name; and the codecs
// with Elias-Fano indices decode to exactly what the fixed-width ones decode to.

#include "../support/generators.hpp"

#include <gradcomp/gradcomp.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

using namespace gradcomp;

namespace {

using ef = elias_fano_indices;

/// k distinct ascending indices below n.
std::vector<std::size_t> random_indices(std::size_t n, std::size_t k, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::size_t> all(n);
  std::iota(all.begin(), all.end(), std::size_t{0});
  for (std::size_t j = 0; j < k; ++j) { // partial Fisher-Yates
    std::swap(all[j], all[j + rng() % (n - j)]);
  }
  all.resize(k);
  std::sort(all.begin(), all.end());
  return all;
}

/// Elias-Fano written the plain way: one bool per bit, then packed to bytes LSB first.
std::vector<std::byte> reference_ef(const std::vector<std::size_t>& idx, std::size_t n) {
  const std::size_t k = idx.size();
  unsigned l = 0;
  while (k != 0 && (k << (l + 1)) <= n) {
    ++l;
  }
  std::vector<bool> low(k * l), high(k == 0 ? 0 : k + ((n - 1) >> l) + 1);
  for (std::size_t j = 0; j < k; ++j) {
    for (unsigned b = 0; b < l; ++b) {
      low[j * l + b] = ((idx[j] >> b) & 1u) != 0;
    }
    high[(idx[j] >> l) + j] = true;
  }
  std::vector<std::byte> out;
  for (const auto* bits : {&low, &high}) {
    for (std::size_t i = 0; i < bits->size(); i += 8) {
      unsigned byte = 0;
      for (std::size_t b = 0; b < 8 && i + b < bits->size(); ++b) {
        byte |= (*bits)[i + b] ? 1u << b : 0u;
      }
      out.push_back(static_cast<std::byte>(byte));
    }
  }
  return out;
}

std::vector<std::byte> write_ef(const std::vector<std::size_t>& idx, std::size_t n) {
  std::vector<std::byte> out(ef::bytes(n, idx.size()));
  ef::write(out.data(), idx.data(), idx.size(), n);
  return out;
}

std::vector<std::size_t> read_ef(const std::vector<std::byte>& s, std::size_t k, std::size_t n) {
  std::vector<std::size_t> out;
  ef::for_each(s.data(), k, n, [&](std::size_t j, std::uint64_t i) {
    REQUIRE(j == out.size());
    out.push_back(static_cast<std::size_t>(i));
  });
  return out;
}

/// The message of validate() for a section, or "" when it is accepted.
std::string ef_error(const std::vector<std::byte>& s, std::size_t k, std::size_t n) {
  try {
    ef::validate(s.data(), k, n, [] { return std::string("span: "); });
  } catch (const gradcomp::error& e) {
    REQUIRE(e.code() == errc::corrupt_payload);
    return std::string(e.reason());
  }
  return "";
}

double log2_binomial(std::size_t n, std::size_t k) {
  return (std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0)) / std::log(2.0);
}

template <class S>
std::vector<std::byte> encode(codec<S>& c, const std::vector<float>& g, const stream_key& key) {
  std::vector<std::byte> out(c.template max_encoded_bytes<float>());
  out.resize(c.encode(cpu, std::span<const float>(g), std::span<std::byte>(out), key));
  return out;
}

template <class S>
std::vector<float> decode(codec<S>& c, const std::vector<std::byte>& m) {
  std::vector<float> out(c.layout().total_size());
  c.decode(cpu, std::span<const std::byte>(m), std::span<float>(out));
  return out;
}

/// The fixed-width and Elias-Fano forms of one scheme decode every message to the same values,
/// and the Elias-Fano message is no larger once the spans hold more than a few indices.
template <class Fixed, class Coded>
void check_same_decode(const Fixed& fixed, const Coded& coded, const model_layout& layout) {
  codec a(fixed, layout);
  codec b(coded, layout);
  for (std::uint64_t seed : test::seeds()) {
    const auto x = test::make_input(layout.total_size(), test::distribution::normal, seed);
    const stream_key key{seed, 5};
    const auto ma = encode(a, x, key);
    const auto mb = encode(b, x, key);
    CAPTURE(seed, ma.size(), mb.size());
    REQUIRE(mb.size() <= ma.size());
    const auto da = decode(a, ma);
    const auto db = decode(b, mb);
    REQUIRE(std::memcmp(da.data(), db.data(), da.size() * sizeof(float)) == 0);
    std::vector<float> sum_a(layout.total_size(), 1.0f), sum_b(layout.total_size(), 1.0f);
    a.decode_add(cpu, std::span<const std::byte>(ma), std::span<float>(sum_a));
    b.decode_add(cpu, std::span<const std::byte>(mb), std::span<float>(sum_b));
    REQUIRE(std::memcmp(sum_a.data(), sum_b.data(), sum_a.size() * sizeof(float)) == 0);
  }
}

} // namespace

TEST_CASE("Elias-Fano sections equal a bit-by-bit reference and decode back", "[index_coding]") {
  const std::size_t ns[] = {1, 2, 3, 7, 64, 65, 100, 1000, 4097, 65536, 70001};
  std::uint64_t seed = 1;
  for (std::size_t n : ns) {
    for (std::size_t k : {std::size_t{0}, std::size_t{1}, n / 100, n / 10, n / 3, n - 1, n}) {
      if (k > n) {
        continue;
      }
      CAPTURE(n, k);
      const auto idx = random_indices(n, k, ++seed);
      const auto bytes = write_ef(idx, n);
      REQUIRE(bytes.size() == ef::bytes(n, k));
      REQUIRE(bytes == reference_ef(idx, n));
      REQUIRE(ef_error(bytes, k, n).empty());
      REQUIRE(read_ef(bytes, k, n) == idx);
    }
  }
  // extremes of the low part: every index at the top of the range, and the densest sets
  for (std::size_t n : {std::size_t{1000}, std::size_t{1} << 20}) {
    std::vector<std::size_t> top(10);
    std::iota(top.begin(), top.end(), n - 10);
    REQUIRE(read_ef(write_ef(top, n), 10, n) == top);
    REQUIRE(write_ef(top, n) == reference_ef(top, n));
  }
}

TEST_CASE("Elias-Fano stays within 2 bits per index of the information limit", "[index_coding]") {
  for (std::size_t n : {std::size_t{10000}, std::size_t{1} << 20, std::size_t{2359296}}) {
    for (double ratio : {0.001, 0.01, 0.1, 0.5}) {
      const auto k = static_cast<std::size_t>(static_cast<double>(n) * ratio);
      CAPTURE(n, k);
      const double bits = 8.0 * static_cast<double>(ef::bytes(n, k));
      const double limit = log2_binomial(n, k);
      REQUIRE(bits >= limit);
      REQUIRE(bits <= limit + 2.0 * static_cast<double>(k) + 16.0);
      // and below 16- or 32-bit integers: well below from 1 % on
      const double fixed = 8.0 * static_cast<double>(fixed_width_indices::bytes(n, k));
      REQUIRE(bits < (ratio >= 0.01 ? 0.6 : 1.0) * fixed);
    }
  }
}

TEST_CASE("every accepted Elias-Fano section is the encoding of what it decodes to",
          "[index_coding][robust]") {
  // all single-bit and single-byte edits of small sections: refused by name, or canonical
  for (std::size_t n : {std::size_t{40}, std::size_t{300}, std::size_t{1000}}) {
    for (std::size_t k : {std::size_t{1}, std::size_t{5}, std::size_t{17}}) {
      CAPTURE(n, k);
      const auto good = write_ef(random_indices(n, k, n + k), n);
      std::size_t refused = 0;
      for (std::size_t bit = 0; bit < 8 * good.size(); ++bit) {
        auto s = good;
        s[bit / 8] ^= static_cast<std::byte>(1u << (bit % 8));
        const std::string why = ef_error(s, k, n);
        if (why.empty()) {
          REQUIRE(write_ef(read_ef(s, k, n), n) == s);
        } else {
          ++refused;
          REQUIRE(why.rfind("span: ", 0) == 0);
        }
      }
      REQUIRE(refused > 0);
      std::mt19937_64 rng(n * k);
      for (int t = 0; t < 200; ++t) {
        auto s = good;
        s[rng() % s.size()] = static_cast<std::byte>(rng());
        if (ef_error(s, k, n).empty()) {
          REQUIRE(write_ef(read_ef(s, k, n), n) == s);
        }
      }
    }
  }
}

TEST_CASE("hostile Elias-Fano sections get named errors", "[index_coding][robust]") {
  const std::size_t n = 1000;
  const std::vector<std::size_t> idx{3, 40, 41, 500, 999};
  const auto good = write_ef(idx, n); // l = 7: 35 low bits (5 bytes), 5 + 8 high bits (2 bytes)
  REQUIRE(ef::low_bits(n, 5) == 7);
  REQUIRE(good.size() == 7);
  auto extra_high = good;
  extra_high[6] |= std::byte{0x80}; // a sixth high bit
  REQUIRE_THAT(ef_error(extra_high, 5, n), Catch::Contains("6 bits set, the span keeps 5"));
  auto missing_high = good;
  missing_high[5] = std::byte{0};
  missing_high[6] = std::byte{0};
  REQUIRE_THAT(ef_error(missing_high, 5, n), Catch::Contains("0 bits set, the span keeps 5"));
  auto padding = good;
  padding[4] |= std::byte{0x80}; // bit 39 lies after the 35 low bits
  REQUIRE_THAT(ef_error(padding, 5, n), Catch::Contains("padding bits are not zero"));
  // 999 = 7 << 7 | 103: raise its low part to 127 -> 1023 >= n
  auto beyond = good;
  beyond[3] |= std::byte{0xf0};
  beyond[4] |= std::byte{0x07};
  REQUIRE_THAT(ef_error(beyond, 5, n), Catch::Contains("index 4 (1023) is out of range"));
  // a tie (what a writer would make of 40 twice) decodes to equal neighbours
  const auto tie = write_ef({3, 40, 40, 500, 999}, n);
  REQUIRE_THAT(ef_error(tie, 5, n), Catch::Contains("index 2 (40) is out of range or not "
                                                    "strictly increasing"));
}

TEST_CASE("codecs with Elias-Fano indices decode as the fixed-width ones do", "[index_coding]") {
  const model_layout layout = test::odd_layout();
  check_same_decode(scheme<topk, layer_span>{{0.01}},
                    scheme<topk, layer_span, sparse_coo<float, ef>>{{0.01}}, layout);
  check_same_decode(scheme<topk, flat_span, sparse_coo<half>>{{0.1}},
                    scheme<topk, flat_span, sparse_coo<half, ef>>{{0.1}}, layout);
  check_same_decode(scheme<threshold_v, bucket_span, sparse_coo<bfloat16>>{{0.5}, {4096}},
                    scheme<threshold_v, bucket_span, sparse_coo<bfloat16, ef>>{{0.5}, {4096}},
                    layout);
  check_same_decode(scheme<random_k, layer_span>{{0.05, true, false}},
                    scheme<random_k, layer_span, sparse_coo<float, ef>>{{0.05, true, false}},
                    layout);
  // shared-seed random-k sends no indices: the codings differ only in the header
  check_same_decode(scheme<random_k, layer_span>{{0.05, false, true}},
                    scheme<random_k, layer_span, sparse_coo<float, ef>>{{0.05, false, true}},
                    layout);
  check_same_decode(scheme<adaptive_threshold, layer_span, sparse_coo<half>>{},
                    scheme<adaptive_threshold, layer_span, sparse_coo<half, ef>>{}, layout);
  using qsgd_ef = sparse_codes<qsgd_levels, ef>;
  check_same_decode(scheme<compose<topk, qsgd>, layer_span>{{{0.05}, {15}}},
                    scheme<compose<topk, qsgd>, layer_span, qsgd_ef>{{{0.05}, {15}}}, layout);
  using tern_ef = sparse_codes<ternary_2bit, ef>;
  check_same_decode(scheme<compose<topk, terngrad>, flat_span>{{{0.02}, {}}},
                    scheme<compose<topk, terngrad>, flat_span, tern_ef>{{{0.02}, {}}}, layout);
}

TEST_CASE("Top-k 1% fp16 with Elias-Fano indices: bits per element on ResNet-50",
          "[index_coding][size]") {
  const model_layout layout = models::resnet50_imagenet();
  const auto d = static_cast<double>(layout.total_size());
  const scheme<topk, layer_span, sparse_coo<half, ef>> coded{{0.01}};
  const scheme<topk, layer_span, sparse_coo<half>> fixed{{0.01}};
  const double coded_bits = 8.0 * static_cast<double>(codec(coded, layout).max_encoded_bytes()) / d;
  const double fixed_bits = 8.0 * static_cast<double>(codec(fixed, layout).max_encoded_bytes()) / d;
  double limit = 0; // fp16 values plus log2 C(n, k) per layer
  for (std::size_t l = 0; l < layout.num_layers(); ++l) {
    const std::size_t n = layout[l].size;
    const std::size_t k = topk{0.01}.count(n);
    limit += 16.0 * static_cast<double>(k) + log2_binomial(n, k);
  }
  limit /= d;
  CAPTURE(coded_bits, fixed_bits, limit);
  REQUIRE(coded_bits <= 0.27);
  REQUIRE(coded_bits < 0.6 * fixed_bits);
  REQUIRE(coded_bits > limit);
}

TEST_CASE("hostile Elias-Fano spans in well-sealed messages get named errors",
          "[index_coding][robust]") {
  const model_layout l = model_layout::from_sizes({1000, 70000});
  const auto x = test::make_input(l.total_size(), test::distribution::normal, 4);
  const std::size_t p0 = wire_header_bytes + 2 * wire_directory_entry_bytes;
  codec c(scheme<topk, layer_span, sparse_coo<float, ef>>{{0.01}}, l);
  const auto m = encode(c, x, {});
  auto error_of = [&](std::size_t at, std::uint8_t value) {
    auto bad = m;
    detail::store_le(bad.data() + at, value);
    detail::seal_message(bad);
    std::vector<float> out(l.total_size(), 42.0f);
    try {
      c.decode(cpu, std::span<const std::byte>(bad), std::span<float>(out));
    } catch (const gradcomp::error& e) {
      REQUIRE(std::all_of(out.begin(), out.end(), [](float v) { return v == 42.0f; }));
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  // span 0: n = 1000, k = 10, l = 6
  REQUIRE_THAT(error_of(p0 + 8, 2),
               Catch::Contains("corrupt_payload") && Catch::Contains("Elias-Fano low-bit count 2"));
  REQUIRE_THAT(error_of(p0 + 9, 0), Catch::Contains("flag of another index coding"));
  REQUIRE_THAT(error_of(p0 + 9, 3), Catch::Contains("corrupt_payload"));
  // a fixed-width codec refuses the message by its encoding id, and the other way round
  codec fixed(scheme<topk, layer_span, sparse_coo<float>>{{0.01}}, l);
  std::vector<float> out(l.total_size());
  REQUIRE_THROWS_MATCHES(
      fixed.decode(cpu, std::span<const std::byte>(m), std::span<float>(out)), gradcomp::error,
      Catch::Predicate<gradcomp::error>(
          [](const gradcomp::error& e) { return e.code() == errc::scheme_mismatch; },
          "scheme_mismatch"));
}
