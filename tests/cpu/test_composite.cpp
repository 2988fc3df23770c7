// SPDX-License-Identifier: Apache-2.0
// Compositions compose<S, Q> (a sparsifier, then a quantizer of the kept values): bitwise
// agreement with running S and then Q by hand, unbiasedness when both are unbiased, exact payload
// sizes, hostile messages, and the bad pairs that are rejected.

#include "../support/generators.hpp"

#include <gradcomp/gradcomp.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

using namespace gradcomp;

namespace {

const model_layout layout =
    model_layout::from_sizes({37, 0, 300, 5, 1000}, {"a", "e", "b", "c", "d"});

/// S then Q by hand: S's codec marks the kept set, the kept values (times S's value scale) are
/// quantized by Q's codec on a layout that puts them at the span's global offset (so Q's random
/// words are the composite's), and the result is scattered back.
template <class S, class Q, class G>
std::vector<float> by_hand(const S& s, const Q& q, G g, const std::vector<float>& x,
                           const stream_key& key) {
  codec<scheme<S, G>> sc({s, g}, layout);
  std::vector<float> sparse(x.size());
  std::vector<std::uint8_t> kept(x.size());
  (void)sc.apply(cpu, std::span<const float>(x), std::span<float>(sparse), key);
  std::vector<std::byte> msg(sc.template max_encoded_bytes<float>());
  const std::size_t bytes =
      sc.encode(cpu, std::span<const float>(x), std::span<std::byte>(msg), key);
  sc.sent_elements(cpu, std::span<const std::byte>(msg.data(), bytes),
                   std::span<std::uint8_t>(kept));
  std::vector<float> out(x.size(), 0.0f);
  for (const span_desc& d : sc.spans()) {
    std::vector<std::size_t> idx;
    std::vector<float> vals;
    for (std::size_t i = d.begin; i < d.begin + d.size; ++i) {
      if (kept[i]) {
        idx.push_back(i);
        vals.push_back(sparse[i]); // S's decoded value: x times S's value scale
      }
    }
    if (idx.empty())
      continue;
    const model_layout ql = d.begin > 0 ? model_layout::from_sizes({d.begin, idx.size()})
                                        : model_layout::from_sizes({idx.size()});
    codec<scheme<Q, layer_span>> qc({q}, ql);
    std::vector<float> in(ql.total_size(), 0.0f), res(ql.total_size());
    std::copy(vals.begin(), vals.end(), in.begin() + static_cast<std::ptrdiff_t>(d.begin));
    (void)qc.apply(cpu, std::span<const float>(in), std::span<float>(res), key);
    for (std::size_t j = 0; j < idx.size(); ++j)
      out[idx[j]] = res[d.begin + j];
  }
  return out;
}

template <class S, class Q, class G>
void check_by_hand(const S& s, const Q& q, G g) {
  using Sch = scheme<compose<S, Q>, G>;
  codec<Sch> c({{s, q}, g}, layout);
  for (auto dist :
       {test::distribution::normal, test::distribution::heavy_tailed, test::distribution::ties}) {
    for (std::uint64_t seed : test::seeds()) {
      const auto x = test::make_input(layout.total_size(), dist, seed);
      const stream_key key{seed, 4, 1};
      std::vector<float> got(x.size());
      const std::size_t bytes = c.apply(cpu, std::span<const float>(x), std::span<float>(got), key);
      REQUIRE(bytes <= c.template max_encoded_bytes<float>());
      const auto want = by_hand(s, q, g, x, key);
      for (std::size_t i = 0; i < x.size(); ++i) {
        CAPTURE(i, seed, G::name);
        REQUIRE(detail::float_bits(got[i]) == detail::float_bits(want[i]));
      }
    }
  }
}

} // namespace

TEST_CASE("compose<S, Q> equals S then Q by hand, bit for bit", "[composite]") {
  check_by_hand(topk{0.1}, terngrad{}, layer_span{});
  check_by_hand(topk{0.1}, terngrad{}, flat_span{});
  check_by_hand(topk{0.25}, qsgd{15}, layer_span{});
  check_by_hand(topk{0.25}, qsgd{7, 64}, bucket_span{200});
  check_by_hand(random_k{0.2, true}, natural{}, layer_span{});
  check_by_hand(random_k{0.2}, scaled_sign{}, flat_span{});
  check_by_hand(threshold_v{0.5}, qsgd{255}, layer_span{});
  check_by_hand(adaptive_threshold{}, terngrad{}, layer_span{});
}

TEST_CASE("random-k (unbiased) + QSGD is unbiased; Omega multiplies", "[composite][statistics]") {
  const model_layout l = model_layout::from_sizes({64});
  codec c(scheme<compose<random_k, qsgd>, flat_span>{{{0.25, true}, {4}}}, l);
  const auto x = test::make_input(64, test::distribution::normal, 3);
  const int draws = 40000;
  std::vector<double> sum(64, 0.0), sum_sq(64, 0.0);
  std::vector<float> q(64);
  for (int t = 0; t < draws; ++t) {
    (void)c.apply(cpu, std::span<const float>(x), std::span<float>(q),
                  {5, static_cast<std::uint64_t>(t)});
    for (std::size_t i = 0; i < 64; ++i) {
      sum[i] += q[i];
      sum_sq[i] += static_cast<double>(q[i]) * q[i];
    }
  }
  for (std::size_t i = 0; i < 64; ++i) {
    const double mean = sum[i] / draws;
    const double sd = std::sqrt(std::max(0.0, sum_sq[i] / draws - mean * mean));
    CAPTURE(i, x[i], mean, sd);
    REQUIRE(std::fabs(mean - x[i]) <= 6.0 * sd / std::sqrt(static_cast<double>(draws)) + 1e-7);
  }
  const compose<random_k, qsgd> cq{{0.25, true}, {4}};
  REQUIRE(*cq.omega(64) == Approx((1.0 + 3.0) * (1.0 + std::min(16.0 / 16.0, 4.0 / 4.0)) - 1.0));
  STATIC_REQUIRE(!compose<topk, qsgd>::is_unbiased); // random_k states it at run time
}

TEST_CASE("composite payloads: exact sizes, hostile bytes, bad pairs", "[composite][wire]") {
  const model_layout l = model_layout::from_sizes({100});
  codec c(scheme<compose<topk, terngrad>, flat_span>{{{0.1}, {}}}, l);
  const auto x = test::make_input(100, test::distribution::normal, 8);
  std::vector<std::byte> m(c.max_encoded_bytes<float>());
  m.resize(c.encode(cpu, std::span<const float>(x), std::span<std::byte>(m), {}));
  // header + directory + [16-byte span header][10 x u16 indices][f32 scale][10 x 2 bits]
  REQUIRE(m.size() == wire_header_bytes + wire_directory_entry_bytes + 16 + 20 + 4 + 3);
  const std::size_t p0 = wire_header_bytes + wire_directory_entry_bytes;
  auto edit = [&](std::size_t at, std::uint8_t v) {
    auto e = m;
    e[at] = std::byte{v};
    detail::seal_message(e);
    return e;
  };
  auto error_of = [&](const std::vector<std::byte>& msg) {
    std::vector<float> out(100, 42.0f);
    try {
      c.decode(cpu, std::span<const std::byte>(msg), std::span<float>(out));
    } catch (const gradcomp::error& e) {
      for (float v : out)
        REQUIRE(v == 42.0f);
      return e.code();
    }
    FAIL("accepted a hostile message");
    return errc::invalid_parameter;
  };
  REQUIRE(error_of(edit(p0, 11)) == errc::corrupt_payload);                 // count
  REQUIRE(error_of(edit(p0 + 9, 1)) == errc::corrupt_payload);              // flags
  REQUIRE(error_of(edit(p0 + 16, 0xff)) == errc::corrupt_payload);          // index out of range
  REQUIRE(error_of(edit(p0 + 18, 0)) == errc::corrupt_payload);             // not increasing
  REQUIRE(error_of(edit(p0 + 16 + 20 + 4, 0xff)) == errc::corrupt_payload); // code 3
  auto bad_scale = m;
  detail::store_le<float>(bad_scale.data() + p0 + 36, -1.0f);
  detail::seal_message(bad_scale);
  REQUIRE(error_of(bad_scale) == errc::corrupt_payload);
  REQUIRE_THROWS_AS(codec(scheme<compose<random_k, qsgd>, flat_span>{{{0.1, false, true}, {}}}, l),
                    gradcomp::error);
  REQUIRE_THROWS_AS(codec(scheme<compose<topk, qsgd>, flat_span>{{{0.1}, {0}}}, l),
                    gradcomp::error);
}

TEST_CASE("a composite works inside Algorithm 1 with error feedback", "[composite][framework]") {
  using W = scheme<compose<topk, terngrad>, layer_span>;
  using M = scheme<identity, flat_span>;
  in_process_cluster<W, M> cl({{{0.2}, {}}}, {}, layout, 2, {3, aggregation::mean, true});
  std::vector<std::vector<float>> g{
      test::make_input(layout.total_size(), test::distribution::normal, 1),
      test::make_input(layout.total_size(), test::distribution::normal, 2)};
  const std::vector<std::span<const float>> views(g.begin(), g.end());
  std::vector<float> update(layout.total_size());
  const step_stats st = cl.step(cpu, std::span<const std::span<const float>>(views), 0, 1.0f,
                                std::span<float>(update));
  REQUIRE(st.bytes_up > 0);
  auto& mem = cl.worker_at(0).memory();
  for (std::size_t i = 0; i < update.size(); ++i)
    REQUIRE(mem.residual()[i] == mem.last_input()[i] - mem.last_sent()[i]);
}

TEST_CASE("a composite's sent elements are S's kept set; raw spans are sent whole",
          "[composite][framework]") {
  const auto check = [](auto s, auto q) {
    using S = decltype(s);
    using Q = decltype(q);
    layer_rules rules;
    rules.identity_below = 6; // layer "c" (5 elements) travels raw
    const scheme<compose<S, Q>, layer_span> cs{{s, q}, {}, {}, rules};
    const scheme<S, layer_span> ss{s, {}, {}, rules};
    codec cc(cs, layout);
    codec sc(ss, layout);
    for (std::uint64_t seed : test::seeds()) {
      const auto x = test::make_input(layout.total_size(), test::distribution::normal, seed);
      const stream_key key{seed, 2, 1};
      const auto sent = [&](auto& c) {
        std::vector<std::byte> msg(c.template max_encoded_bytes<float>());
        const std::size_t bytes =
            c.encode(cpu, std::span<const float>(x), std::span<std::byte>(msg), key);
        std::vector<std::uint8_t> mask(x.size(), 7);
        c.sent_elements(cpu, std::span<const std::byte>(msg.data(), bytes),
                        std::span<std::uint8_t>(mask));
        return mask;
      };
      const auto got = sent(cc);
      REQUIRE(got == sent(sc));
      const span_desc& raw = cc.spans()[3];
      REQUIRE_FALSE(raw.compressed);
      for (std::size_t i = raw.begin; i < raw.begin + raw.size; ++i)
        REQUIRE(got[i] == 1);
      // top-k keeps ceil(0.1 n) of each compressed layer: the mask is not all ones
      REQUIRE(std::count(got.begin(), got.end(), std::uint8_t{1}) < static_cast<long>(x.size()));
    }
  };
  check(topk{0.1}, terngrad{});
  check(random_k{0.2, true}, qsgd{15});
  check(threshold_v{0.5}, natural{});
}
