// SPDX-License-Identifier: Apache-2.0
// The sparsifier contract (compressor/selection_rule.hpp): each built-in rule against a direct
// reference of its definition, and sparsifiers written outside the library (one top-keys, one
// predicate) running through codec<Scheme> with nothing else added: selection, wire header
// checks, decode.

#include "../support/generators.hpp"
#include "../support/reference.hpp"

#include <gradcomp/gradcomp.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <set>
#include <vector>

using namespace gradcomp;

static_assert(sparsifier<topk> && sparsifier<random_k> && sparsifier<threshold_v> &&
              sparsifier<adaptive_threshold>);
static_assert(keeps_fixed_count<topk> && keeps_fixed_count<random_k>);
static_assert(!keeps_fixed_count<threshold_v> && !keeps_fixed_count<adaptive_threshold>);
static_assert(!sparsifier<terngrad> && !sparsifier<qsgd>);

// The custom sparsifiers live in a named namespace, as a user's would: their defaulted
// comparisons then have external linkage (clang warns about unused internal ones).
namespace user_sparsifiers {

/// What every test sparsifier below shares but its rule (Self::rule_type, made the same for every
/// span) and count: no parameter, no scale, indices sent, at most count(n) kept.
template <class Self>
struct plain_sparsifier {
  using payload_kind = sparse_payload;
  static constexpr bool is_unbiased = false;
  static constexpr bool is_elementwise = false;
  static constexpr bool needs_span_max = false;
  void validate() const {}
  [[nodiscard]] Self with_parameter(double) const { return static_cast<const Self&>(*this); }
  [[nodiscard]] std::optional<double> omega(std::size_t) const { return std::nullopt; }
  [[nodiscard]] std::uint64_t parameter_word() const { return 7; }
  [[nodiscard]] bool indices_implied() const noexcept { return false; }
  [[nodiscard]] float value_scale(std::size_t, std::size_t) const noexcept { return 1.0f; }
  [[nodiscard]] std::size_t max_selected(std::size_t n) const {
    return static_cast<const Self&>(*this).count(n);
  }
  [[nodiscard]] auto rule(const span_context&) const noexcept { return typename Self::rule_type{}; }
  friend bool operator==(const plain_sparsifier&, const plain_sparsifier&) = default;
};

/// Keeps the k = ceil(n / 4) entries of smallest magnitude (a top-keys rule on ~|x| bits).
struct smallest_quarter : plain_sparsifier<smallest_quarter> {
  static constexpr compressor_id id = compressor_id::topk;
  static constexpr std::string_view name = "smallest_quarter";
  [[nodiscard]] std::size_t count(std::size_t n) const { return (n + 3) / 4; }
  struct rule_type {
    using key_type = std::uint32_t;
    template <class T>
    [[nodiscard]] GRADCOMP_HOST_DEVICE key_type key(const T* xs, std::uint64_t i) const noexcept {
      return ~detail::abs_bits(to_float(xs[i]));
    }
  };
  friend bool operator==(const smallest_quarter&, const smallest_quarter&) = default;
};

/// Keeps every positive entry (a predicate rule).
struct positives : plain_sparsifier<positives> {
  static constexpr compressor_id id = compressor_id::threshold_v;
  static constexpr std::string_view name = "positives";
  [[nodiscard]] std::size_t count(std::size_t n) const { return n; } ///< as many as may pass
  struct rule_type {
    template <class T>
    [[nodiscard]] GRADCOMP_HOST_DEVICE bool keep(const T* xs, std::uint64_t i) const noexcept {
      return to_float(xs[i]) > 0.0f;
    }
  };
  friend bool operator==(const positives&, const positives&) = default;
};

/// Keeps ceil(2n / 3) entries drawn by a fixed walk j -> (5j + 3) mod n (a sample rule); past n/2
/// that is all but the first n - k distinct draws.
struct walk_two_thirds : plain_sparsifier<walk_two_thirds> {
  static constexpr compressor_id id = compressor_id::random_k;
  static constexpr std::string_view name = "walk_two_thirds";
  [[nodiscard]] std::size_t count(std::size_t n) const { return (2 * n + 2) / 3; }
  struct rule_type {
    [[nodiscard]] GRADCOMP_HOST_DEVICE std::uint64_t draw(std::uint64_t j,
                                                          std::uint64_t n) const noexcept {
      return (5 * j + 3) % n;
    }
  };
  friend bool operator==(const walk_two_thirds&, const walk_two_thirds&) = default;
};

/// A broken sample rule: every draw is index 0, so no span of n > 2 reaches its count.
struct stuck_draws : plain_sparsifier<stuck_draws> {
  static constexpr compressor_id id = compressor_id::random_k;
  static constexpr std::string_view name = "stuck_draws";
  [[nodiscard]] std::size_t count(std::size_t n) const { return (n + 1) / 2; }
  struct rule_type {
    [[nodiscard]] GRADCOMP_HOST_DEVICE std::uint64_t draw(std::uint64_t,
                                                          std::uint64_t) const noexcept {
      return 0;
    }
  };
  friend bool operator==(const stuck_draws&, const stuck_draws&) = default;
};
} // namespace user_sparsifiers

using user_sparsifiers::positives;
using user_sparsifiers::smallest_quarter;
using user_sparsifiers::stuck_draws;
using user_sparsifiers::walk_two_thirds;
static_assert(sparsifier<smallest_quarter> && keeps_fixed_count<smallest_quarter>);
static_assert(sparsifier<positives> && !keeps_fixed_count<positives>);
static_assert(sparsifier<walk_two_thirds> && keeps_fixed_count<walk_two_thirds>);

namespace {

std::vector<float> gradient(std::size_t n, std::uint64_t seed) {
  std::vector<float> x = test::make_input(n, test::distribution::normal, seed);
  for (std::size_t i = 0; i < n; i += 7) {
    x[i] = x[i / 2]; // magnitude ties
  }
  return x;
}

template <class S>
std::vector<float> apply(S s, const model_layout& l, const std::vector<float>& x) {
  codec c(s, l);
  std::vector<float> out(x.size());
  c.apply(cpu, std::span<const float>(x), std::span<float>(out), stream_key{11, 2, 0});
  return out;
}

} // namespace

TEST_CASE("built-in rules compute their definitions", "[selection_rule]") {
  const std::vector<float> x = gradient(1000, 3);
  const span_context ctx{4096, 11, stream_key{11, 2, 0}.stream_word(), detail::float_bits(2.5f)};
  const auto mag = topk{0.1}.rule(ctx);
  const auto sub = random_k{0.1}.rule(ctx);
  const auto at_least = threshold_v{0.5}.rule(ctx);
  const auto half_max = adaptive_threshold{}.rule(ctx);
  const random_stream stream = ctx.subset(false);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float a = std::fabs(x[i]);
    CHECK(mag.key(x.data(), i) == detail::float_bits(a));
    CHECK(at_least.keep(x.data(), i) == (a >= threshold_v{0.5}.float_threshold()));
    CHECK(half_max.keep(x.data(), i) == (a > 0.0f && 2.0f * a >= 2.5f));
  }
  // random-k's draws: floor(w n / 2^64) of the word at 4096 + j, then at r 2^40 + 4096 + j - r n
  for (const std::uint64_t n : {std::uint64_t{1}, std::uint64_t{7}, std::uint64_t{1000}}) {
    for (std::uint64_t j = 0; j < 3 * n + 2; ++j) {
      const std::uint64_t r = j / n;
      const std::uint64_t w = stream.bits64((r << 40) + 4096 + j - r * n);
      __extension__ using u128 = unsigned __int128;
      CHECK(sub.draw(j, n) == static_cast<std::uint64_t>((static_cast<u128>(w) * n) >> 64));
    }
  }
}

TEST_CASE("random-k keeps the reference's draws, complements and long draw sequences included",
          "[selection_rule][random_k]") {
  // every n up to 70 at several ratios (k = 1, k = n, both sides of n/2), 40 steps each: small
  // spans often need more than n draws, which exercises the counters past the span
  sparse_workspace ws;
  std::size_t long_sequences = 0; // spans that drew more than n times
  for (std::size_t n = 1; n <= 70; ++n) {
    for (const double ratio : {0.01, 0.3, 0.5, 0.51, 0.9, 1.0}) {
      for (const bool shared : {false, true}) {
        const random_k c{ratio, false, shared};
        const std::size_t k = c.count(n);
        for (std::uint64_t step = 0; step < 40; ++step) {
          const stream_key key{23, step, 5};
          const std::uint64_t g0 = 1000 + 97 * n;
          const span_context ctx{g0, key.seed, key.stream_word(), 0};
          (void)detail::select_sparse(cpu, c, static_cast<const float*>(nullptr), n, ctx, ws);
          REQUIRE(ws.indices == test::ref::random_subset(n, k, key, g0, shared));
          const auto rule = c.rule(ctx);
          std::set<std::uint64_t> drawn;
          std::uint64_t j = 0;
          while (drawn.size() < sample_target_of(n, k).distinct)
            drawn.insert(rule.draw(j++, n));
          long_sequences += j > n ? 1 : 0;
        }
      }
    }
  }
  REQUIRE(long_sequences > 0);
}

TEST_CASE("a top-keys sparsifier from outside the library runs through the codec",
          "[selection_rule]") {
  const model_layout l = model_layout::from_sizes({37, 1, 300, 64});
  const std::vector<float> x = gradient(l.total_size(), 5);
  const std::vector<float> out = apply(scheme<smallest_quarter, layer_span>{}, l, x);
  for (std::size_t s = 0; s < l.num_layers(); ++s) {
    const std::size_t b = l[s].offset, n = l[s].size, k = (n + 3) / 4;
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t i, std::size_t j) {
      return std::fabs(x[b + i]) < std::fabs(x[b + j]);
    });
    std::vector<float> want(n, 0.0f);
    for (std::size_t j = 0; j < k; ++j) {
      want[order[j]] = x[b + order[j]];
    }
    for (std::size_t i = 0; i < n; ++i) {
      CHECK(out[b + i] == want[i]);
    }
  }
}

TEST_CASE("a predicate sparsifier from outside the library runs through the codec",
          "[selection_rule]") {
  const model_layout l = model_layout::from_sizes({100, 3, 513});
  const std::vector<float> x = gradient(l.total_size(), 9);
  const std::vector<float> out = apply(scheme<positives, flat_span>{}, l, x);
  for (std::size_t i = 0; i < x.size(); ++i) {
    CHECK(out[i] == (x[i] > 0.0f ? x[i] : 0.0f));
  }
}

TEST_CASE("a sample sparsifier from outside the library runs through the codec",
          "[selection_rule]") {
  const model_layout l = model_layout::from_sizes({37, 1, 301, 64});
  const std::vector<float> x = gradient(l.total_size(), 4);
  const std::vector<float> out = apply(scheme<walk_two_thirds, layer_span>{}, l, x);
  for (std::size_t s = 0; s < l.num_layers(); ++s) {
    const std::size_t b = l[s].offset, n = l[s].size, k = (2 * n + 2) / 3;
    const sample_target t = sample_target_of(n, k);
    std::vector<bool> marked(n, false);
    std::size_t found = 0;
    for (std::uint64_t j = 0; found < t.distinct; ++j) {
      const std::size_t i = (5 * j + 3) % n;
      found += marked[i] ? 0 : 1;
      marked[i] = true;
    }
    std::size_t kept = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const bool keep = marked[i] != t.complement;
      kept += keep ? 1 : 0;
      CHECK(out[b + i] == (keep ? x[b + i] : 0.0f));
    }
    CHECK(kept == k);
  }
}

TEST_CASE("a sample rule that cannot reach its count is an error, not a hang", "[selection_rule]") {
  const model_layout l = model_layout::from_sizes({1000});
  const std::vector<float> x = gradient(1000, 2);
  codec c(scheme<stuck_draws, flat_span>{}, l);
  std::vector<std::byte> msg(c.max_encoded_bytes());
  try {
    (void)c.encode(cpu, std::span<const float>(x), std::span<std::byte>(msg), {});
    FAIL("no error");
  } catch (const error& e) {
    CHECK(e.code() == errc::invalid_parameter);
    CHECK_THAT(e.what(), Catch::Contains("distinct"));
  }
}

TEST_CASE("the wire header is checked against the custom sparsifier's traits", "[selection_rule]") {
  const model_layout l = model_layout::from_sizes({256});
  const std::vector<float> x = gradient(256, 1);
  codec c(scheme<smallest_quarter, flat_span>{}, l);
  std::vector<std::byte> msg(c.max_encoded_bytes());
  msg.resize(c.encode(cpu, std::span<const float>(x), std::span<std::byte>(msg), {}));
  // the span header starts after the frame and its one directory entry: claim one value fewer
  const std::size_t h = wire_header_bytes + wire_directory_entry_bytes;
  detail::store_le<std::uint64_t>(msg.data() + h, 63);
  detail::seal_message(msg);
  std::vector<float> out(256);
  try {
    c.decode(cpu, std::span<const std::byte>(msg), std::span<float>(out));
    FAIL("a count other than the sparsifier's was accepted");
  } catch (const gradcomp::error& e) {
    CHECK(e.code() == errc::corrupt_payload);
    CHECK(std::string(e.what()).find("the compressor keeps 64") != std::string::npos);
  }
}
