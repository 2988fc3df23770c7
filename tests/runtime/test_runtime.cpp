// SPDX-License-Identifier: Apache-2.0
// Run-time schemes: the spec grammar, the registry's named errors, any_codec's bytes against
// codec<Scheme> of the scheme the spec names, every registered scheme's round trip and its
// refusal of truncated and edited messages, and the
// framework (worker/master with error feedback) on runtime_scheme against the typed framework.

#include "../support/generators.hpp"
#include "../support/specs.hpp"

#include <gradcomp/gradcomp.hpp>
#include <gradcomp/runtime/any_codec.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace gradcomp;

namespace {

const model_layout layout =
    model_layout::from_sizes({300, 7, 1000, 64, 2048}, {"conv", "bias", "fc", "bn", "head"});

std::vector<float> input(std::uint64_t seed) {
  return test::make_input(layout.total_size(), test::distribution::normal, seed);
}

template <class C, class T = float>
std::vector<std::byte> encoded(C& c, const std::vector<T>& x, const stream_key& key) {
  std::vector<std::byte> out(c.template max_encoded_bytes<T>());
  out.resize(c.encode(cpu, std::span<const T>(x), std::span<std::byte>(out), key));
  return out;
}

/// The spec's any_codec writes the bytes of the typed codec, and decodes them identically.
template <class Scheme>
void same_as_typed(const std::string& spec, const Scheme& s) {
  CAPTURE(spec);
  any_codec a(spec, layout);
  codec<Scheme> c(s, layout);
  REQUIRE(a.ids() == c.ids());
  REQUIRE(a.plan_digest() == c.plan_digest());
  REQUIRE(a.max_encoded_bytes() == c.max_encoded_bytes());
  for (std::uint64_t seed : {1u, 2u}) {
    const std::vector<float> x = input(seed);
    const stream_key key{seed, seed + 3, 1};
    const std::vector<std::byte> ma = encoded(a, x, key), mc = encoded(c, x, key);
    REQUIRE(ma == mc);
    std::vector<float> da(x.size(), 1.0f), dc(x.size(), 1.0f);
    a.decode_add(cpu, std::span<const std::byte>(ma), std::span<float>(da));
    c.decode_add(cpu, std::span<const std::byte>(mc), std::span<float>(dc));
    REQUIRE(std::memcmp(da.data(), dc.data(), da.size() * sizeof(float)) == 0);
  }
}

errc error_of(const std::string& spec, std::string* what = nullptr) {
  try {
    any_codec a(spec, layout);
  } catch (const gradcomp::error& e) {
    if (what) {
      *what = e.what();
    }
    return e.code();
  }
  return errc::corrupt_payload; // no error: a code spec parsing never uses
}

} // namespace

TEST_CASE("a spec names the scheme whose bytes any_codec writes", "[runtime][spec]") {
  same_as_typed("topk:0.01/layer/coo-f16", scheme<topk, layer_span, sparse_coo<half>>{{0.01}});
  same_as_typed("topk:0.01/layer/coo-f16-ef",
                scheme<topk, layer_span, sparse_coo<half, elias_fano_indices>>{{0.01}});
  same_as_typed(
      "threshold_v:0.5/bucket:128/coo-f32-ef",
      scheme<threshold_v, bucket_span, sparse_coo<float, elias_fano_indices>>{{0.5}, {128}});
  same_as_typed(
      "compose(topk:0.01,qsgd:7)/layer/codes-ef",
      scheme<compose<topk, qsgd>, layer_span, sparse_codes<qsgd_levels, elias_fano_indices>>{
          {{0.01}, {7}}});
  same_as_typed("qsgd:15/bucket:128", scheme<qsgd, bucket_span>{{15}, {128}});
  same_as_typed("qsgd:levels=15,bucket=64/layer", scheme<qsgd, layer_span>{{15, 64}});
  same_as_typed("compose(topk:0.01,terngrad)/layer",
                scheme<compose<topk, terngrad>, layer_span>{{{0.01}, {}}});
  same_as_typed("compose(random_k:0.1,unbiased,qsgd:7)/flat",
                scheme<compose<random_k, qsgd>>{{{0.1, true, false}, {7}}});
  scheme<terngrad, layer_span> clipped{{true, 2.5}};
  clipped.rules.identity_below = 64;
  same_as_typed("terngrad:clip=2.5/layer/identity_below=64", clipped);
  same_as_typed("terngrad:clip/layer", scheme<terngrad, layer_span>{{true, 2.5}});
  same_as_typed("random_k:0.1,unbiased,shared_seed/layer/coo-bf16",
                scheme<random_k, layer_span, sparse_coo<bfloat16>>{{0.1, true, true}});
  same_as_typed("identity/f16", scheme<identity, flat_span, dense<half>>{});
  same_as_typed("natural/layer/nat8", scheme<natural, layer_span, natural_codes<8>>{});
  same_as_typed("sr_bf16/bucket:1000",
                scheme<stochastic_rounding<bfloat16>, bucket_span>{{}, {1000}});
  same_as_typed("scaled_sign/layer", scheme<scaled_sign, layer_span>{});
  same_as_typed("threshold_v:0.5", scheme<threshold_v>{{0.5}});
  scheme<topk, layer_span> overridden{{0.01}};
  overridden.rules.overrides.push_back({"fc", 0.2});
  same_as_typed(" topk : 0.01 / layer / override=fc:0.2 ", overridden);
}

TEST_CASE("every registered scheme round-trips under every granularity", "[runtime][registry]") {
  const std::vector<std::string> specs = runtime::example_specs();
  REQUIRE(specs.size() >= 40);
  for (const std::string& base : specs) {
    for (const char* g : {"flat", "layer", "bucket:500"}) {
      const std::string spec = test::with_granularity(base, g);
      CAPTURE(spec);
      any_codec a(spec, layout);
      const std::vector<float> x = input(7);
      const stream_key key{7, 1};
      const std::vector<std::byte> m = encoded(a, x, key);
      REQUIRE(m.size() <= a.max_encoded_bytes());
      REQUIRE(encoded(a, x, key) == m); // deterministic
      std::vector<float> q(x.size()), d(x.size());
      a.apply(cpu, std::span<const float>(x), std::span<float>(q), key);
      a.decode(cpu, std::span<const std::byte>(m), std::span<float>(d));
      REQUIRE(q == d);
      // a copy is an independent codec with the same bytes
      any_codec b = a;
      REQUIRE(encoded(b, x, key) == m);
      // half gradients too
      const std::vector<half> xh = test::convert<half>(x);
      std::vector<half> qh(x.size());
      a.apply(cpu, std::span<const half>(xh), std::span<half>(qh), key);
    }
  }
}

namespace {

/// Recomputes the checksum (bytes [48, 56) of the header), so an edit reaches the structural and
/// value checks.
void reseal(std::vector<std::byte>& m) {
  detail::seal_message(m);
}

/// Decodes a damaged message into float and half outputs: either a named error with the output
/// untouched, or finite values that decode_add reproduces. Returns whether it decoded.
bool decodes_safely(any_codec& a, const std::vector<std::byte>& m) {
  bool decoded = false;
  for (int as_half = 0; as_half < 2; ++as_half) {
    std::vector<float> out(a.layout().total_size(), 42.0f), again(out.size(), 0.0f);
    std::vector<half> outh(out.size(), from_float<half>(42.0f));
    bool ok = true;
    try {
      if (as_half) {
        a.decode(cpu, std::span<const std::byte>(m), std::span<half>(outh));
        for (half v : outh)
          ok = ok && std::isfinite(to_float(v));
      } else {
        a.decode(cpu, std::span<const std::byte>(m), std::span<float>(out));
        a.decode_add(cpu, std::span<const std::byte>(m), std::span<float>(again));
        for (std::size_t i = 0; i < out.size(); ++i)
          ok =
              ok && std::isfinite(out[i]) && (out[i] == again[i] || (out[i] == 0 && again[i] == 0));
      }
      decoded = true;
      CAPTURE(as_half);
      REQUIRE(ok); // finite, and decode_add onto zeros reproduces decode
    } catch (const gradcomp::error&) {
      for (std::size_t i = 0; i < out.size(); ++i)
        ok = ok && out[i] == 42.0f && to_float(outh[i]) == 42.0f;
      CAPTURE(as_half);
      REQUIRE(ok); // a refused message leaves the output untouched
    }
  }
  return decoded;
}

} // namespace

TEST_CASE("every registered scheme refuses damaged messages with a named error",
          "[runtime][registry][hostile]") {
  std::mt19937_64 rng(11);
  for (const std::string& base : runtime::example_specs()) {
    for (const char* g : {"flat", "layer", "bucket:500"}) {
      const std::string spec = test::with_granularity(base, g);
      CAPTURE(spec);
      any_codec a(spec, layout);
      const std::vector<float> x = input(3);
      const std::vector<std::byte> m = encoded(a, x, stream_key{3, 4});
      REQUIRE(decodes_safely(a, m));
      // every truncation point of the header and directory, and some of the payload
      for (std::size_t cut = 0; cut < m.size(); cut += cut < 160 ? 1 : 1 + m.size() / 16) {
        REQUIRE_FALSE(decodes_safely(a, std::vector<std::byte>(m.begin(), m.begin() + cut)));
      }
      // random edits, resealed: structural and value checks must hold without the checksum
      for (int trial = 0; trial < 48; ++trial) {
        std::vector<std::byte> bad = m;
        const std::size_t edits = 1 + rng() % 4;
        for (std::size_t e = 0; e < edits; ++e) {
          const std::size_t at =
              trial % 2 == 0 ? rng() % std::min<std::size_t>(bad.size(), 160) : rng() % bad.size();
          bad[at] = static_cast<std::byte>(rng());
        }
        if (bad.size() >= 56) {
          reseal(bad);
        }
        decodes_safely(a, bad);
      }
      // without a reseal, any edit is a checksum error
      std::vector<std::byte> flipped = m;
      flipped[m.size() - 1] ^= std::byte{0x10};
      REQUIRE_FALSE(decodes_safely(a, flipped));
    }
  }
}

TEST_CASE("a bad spec is a named error listing the valid choices", "[runtime][errors]") {
  std::string what;
  REQUIRE(error_of("top_k:0.01", &what) == errc::invalid_parameter);
  REQUIRE_THAT(what, Catch::Contains("unknown compressor 'top_k'") && Catch::Contains("topk") &&
                         Catch::Contains("terngrad") && Catch::Contains("compose"));
  REQUIRE(error_of("topk:0.01/layer/coo-f8", &what) == errc::invalid_parameter);
  REQUIRE_THAT(what, Catch::Contains("encoding 'coo-f8'") && Catch::Contains("coo-f16") &&
                         Catch::Contains("coo-bf16"));
  REQUIRE(error_of("terngrad/coo-f32", &what) == errc::invalid_parameter);
  REQUIRE_THAT(what, Catch::Contains("ternary2"));
  REQUIRE(error_of("topk:abc", &what) == errc::invalid_parameter);
  REQUIRE_THAT(what, Catch::Contains("finite number") && Catch::Contains("'abc'"));
  REQUIRE(error_of("topk:0.01,0.02", &what) == errc::invalid_parameter);
  REQUIRE_THAT(what, Catch::Contains("unexpected argument '0.02'") && Catch::Contains("usage"));
  REQUIRE(error_of("qsgd:levels=0") == errc::invalid_parameter);
  REQUIRE(error_of("qsgd:15,bucket=-1") == errc::invalid_parameter);
  REQUIRE(error_of("terngrad:clip=nan") == errc::invalid_parameter);
  REQUIRE(error_of("terngrad:clip=-1") == errc::invalid_parameter); // the compressor's check
  REQUIRE(error_of("topk:2") == errc::invalid_parameter);
  REQUIRE(error_of("topk:1e999") == errc::invalid_parameter);
  REQUIRE(error_of("random_k:0.1,unbiassed", &what) == errc::invalid_parameter);
  REQUIRE(error_of("sign:1", &what) == errc::invalid_parameter);
  REQUIRE_THAT(what, Catch::Contains("unexpected argument '1'"));
  REQUIRE(error_of("topk/layer/flat", &what) == errc::invalid_parameter);
  REQUIRE_THAT(what, Catch::Contains("second granularity"));
  REQUIRE(error_of("topk/coo-f16/coo-f32") == errc::invalid_parameter);
  REQUIRE(error_of("topk/bucket:x") == errc::invalid_parameter);
  REQUIRE(error_of("topk/bucket:0") == errc::invalid_parameter); // bucket_span's own check
  REQUIRE(error_of("topk/flat/identity_below=64") == errc::invalid_parameter); // rules need layers
  REQUIRE(error_of("topk/layer/override=nosuch:0.1") == errc::invalid_parameter);
  REQUIRE(error_of("topk/layer/colour=red", &what) == errc::invalid_parameter);
  REQUIRE_THAT(what, Catch::Contains("unknown rule"));
  REQUIRE(error_of("") == errc::invalid_parameter);
  REQUIRE(error_of("topk//layer") == errc::invalid_parameter);
  REQUIRE(error_of("compose(topk:0.01,terngrad") == errc::invalid_parameter);
  REQUIRE(error_of("compose(topk:0.01)", &what) == errc::invalid_parameter);
  REQUIRE_THAT(what, Catch::Contains("two compressors"));
  REQUIRE(error_of("compose(terngrad,topk)", &what) == errc::invalid_parameter);
  REQUIRE_THAT(what, Catch::Contains("compositions") && Catch::Contains("compose(topk,terngrad)"));
  REQUIRE(error_of("compose(random_k:0.1,shared_seed,qsgd)") == errc::invalid_parameter);
  REQUIRE(error_of("topk:0.01)") == errc::invalid_parameter);
  std::string deep = "topk:0.01";
  for (int i = 0; i < 2000; ++i) {
    deep = "compose(" + deep + ",qsgd)";
  }
  REQUIRE(error_of(deep, &what) == errc::invalid_parameter);
  REQUIRE_THAT(what, Catch::Contains("the limit is 4096"));
  REQUIRE(error_of("compose(compose(topk,terngrad),qsgd)") == errc::invalid_parameter);
  REQUIRE(error_of("topk:0.01/layer/override=fc") == errc::invalid_parameter);
  REQUIRE(error_of("topk:ratio=0.1,ratio=0.2") == errc::invalid_parameter);
  REQUIRE_THAT(runtime::registry_help(), Catch::Contains("random_k:RATIO[,unbiased]"));
}

TEST_CASE("worker and master on runtime_scheme send the typed framework's bytes",
          "[runtime][framework]") {
  using W = scheme<topk, layer_span>;
  using M = scheme<qsgd, flat_span>;
  const W w{{0.05}};
  const M m{{15}};
  const runtime_scheme rw{"topk:0.05/layer"}, rm{"qsgd:15/flat"};
  constexpr std::size_t n = 3;
  std::vector<worker<W, M>> typed;
  std::vector<worker<runtime_scheme, runtime_scheme>> erased;
  for (std::uint32_t r = 0; r < n; ++r) {
    typed.emplace_back(w, m, layout, r, worker<W, M>::options{5, true});
    erased.emplace_back(rw, rm, layout, r,
                        worker<runtime_scheme, runtime_scheme>::options{5, true});
  }
  master<W, M> ps_t(w, m, layout, n, {5, aggregation::mean, true});
  master<runtime_scheme, runtime_scheme> ps_e(rw, rm, layout, n, {5, aggregation::mean, true});
  std::vector<float> ut(layout.total_size()), ue(layout.total_size());
  for (std::uint64_t step = 0; step < 3; ++step) {
    ps_t.begin(step);
    ps_e.begin(step);
    for (std::size_t r = 0; r < n; ++r) {
      const std::vector<float> g = input(100 * step + r);
      const auto mt = typed[r].compress(cpu, std::span<const float>(g), step, 0.1f);
      const auto me = erased[r].compress(cpu, std::span<const float>(g), step, 0.1f);
      REQUIRE(std::vector<std::byte>(mt.begin(), mt.end()) ==
              std::vector<std::byte>(me.begin(), me.end()));
      ps_t.receive(cpu, mt);
      ps_e.receive(cpu, me);
    }
    const auto bt = ps_t.broadcast(cpu);
    const auto be = ps_e.broadcast(cpu);
    REQUIRE(std::vector<std::byte>(bt.begin(), bt.end()) ==
            std::vector<std::byte>(be.begin(), be.end()));
    typed[0].decompress(cpu, bt, step, std::span<float>(ut));
    erased[0].decompress(cpu, be, step, std::span<float>(ue));
    REQUIRE(ut == ue);
  }
  // majority vote needs sign on the workers, at run time as at compile time
  REQUIRE_THROWS_AS((master<runtime_scheme, runtime_scheme>(
                        rw, rm, layout, n, {5, aggregation::majority_vote, false})),
                    gradcomp::error);
  master<runtime_scheme, runtime_scheme> vote({"sign/layer"}, {"identity"}, layout, n,
                                              {5, aggregation::majority_vote, false});
  REQUIRE(vote.workers() == n);
}
