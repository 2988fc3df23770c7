// SPDX-License-Identifier: Apache-2.0
// Every registered scheme x granularity x value type agrees bit for bit with the plain reference
// (SPECS.md §2.5 A1): same selected index sets, same values, same random decisions. The schemes
// are the registry's (runtime/registry.hpp), run through any_codec: a scheme added there is
// checked here, and fails to compile until reference_span knows its compressor. Compositions
// have their own reference in test_composite.

#include "../support/generators.hpp"
#include "../support/reference.hpp"

#include <gradcomp/gradcomp.hpp>
#include <gradcomp/runtime/registry.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

using namespace gradcomp;
namespace ref = gradcomp::test::ref;
using test::distribution;

namespace {

template <class C, class E>
std::vector<float> reference_span(const C& c, const std::vector<float>& x, std::uint64_t g0,
                                  const stream_key& key) {
  const std::size_t n = x.size();
  if constexpr (std::is_same_v<C, topk>) {
    return ref::topk(x, c.count(n));
  } else if constexpr (std::is_same_v<C, random_k>) {
    const std::size_t k = c.count(n);
    return ref::keep(x, ref::random_subset(n, k, key, g0, c.shared_seed));
  } else if constexpr (std::is_same_v<C, threshold_v>) {
    return ref::threshold(x, c.threshold);
  } else if constexpr (std::is_same_v<C, adaptive_threshold>) {
    return ref::adaptive(x);
  } else if constexpr (std::is_same_v<C, terngrad>) {
    return ref::terngrad(x, ref::terngrad_scale(x, c.clip, c.clip_sigmas), key, g0);
  } else if constexpr (std::is_same_v<C, qsgd>) {
    return ref::qsgd(x, c.levels, c.bucket_size, key, g0);
  } else if constexpr (std::is_same_v<C, sign_sgd>) {
    return ref::sign(x, false);
  } else if constexpr (std::is_same_v<C, scaled_sign>) {
    return ref::sign(x, true);
  } else if constexpr (std::is_same_v<C, natural>) {
    return ref::natural(x, key, g0, E::bits);
  } else if constexpr (std::is_same_v<C, stochastic_rounding<bfloat16>> ||
                       std::is_same_v<C, stochastic_rounding<half>>) {
    std::vector<float> out(n);
    for (std::size_t i = 0; i < n; ++i)
      out[i] = ref::sr_one<typename C::target_type>(x[i], ref::rnd32(key, g0 + i));
    return out;
  } else {
    static_assert(std::is_same_v<C, identity>, "a registered compressor without a reference");
    std::vector<float> out(n);
    for (std::size_t i = 0; i < n; ++i)
      out[i] = to_float(from_float<typename E::value_type>(x[i]));
    return out;
  }
}

// The reference result of every span of the codec's plan, as floats (before rounding to the
// output type), for the scheme of registry entry En that `spec` names.
template <class En>
std::vector<std::vector<float>> reference_spans(const std::string& spec, const any_codec& c,
                                                const std::vector<float>& xf,
                                                const stream_key& key) {
  using C = typename En::compressor_type;
  using E = typename En::encoding_type;
  const auto any_name = [](std::string_view) { return true; };
  const C comp = runtime::read_scheme<En>(runtime::parse_spec(spec, any_name)).compressor;
  std::vector<std::vector<float>> wants;
  for (const span_desc& sp : c.spans()) {
    std::vector<float> want(xf.begin() + static_cast<std::ptrdiff_t>(sp.begin),
                            xf.begin() + static_cast<std::ptrdiff_t>(sp.begin + sp.size));
    if (sp.compressed) {
      const C span_comp = sp.parameter ? comp.with_parameter(*sp.parameter) : comp;
      want = reference_span<C, E>(span_comp, want, sp.begin, key);
      if constexpr (En::scheme_type::is_sparse) {
        float scale = 1.0f;
        if constexpr (std::is_same_v<C, random_k>) {
          scale = span_comp.value_scale(sp.size, span_comp.count(sp.size));
        }
        for (float& w : want)
          w = to_float(from_float<typename E::value_type>(w)) * scale;
      }
    }
    wants.push_back(std::move(want));
  }
  return wants;
}

// True when a finite reference value does not fit the output type T (the decoder must refuse).
template <class T>
bool overflows_output(const std::vector<std::vector<float>>& wants) {
  for (const auto& want : wants)
    for (float w : want)
      if (std::isfinite(w) && !std::isfinite(to_float(from_float<T>(w))))
        return true;
  return false;
}

template <class En, class T>
void check_spec(const std::string& spec, const model_layout& layout, distribution d,
                std::uint64_t seed) {
  any_codec c(spec, layout);
  const std::vector<T> xt = test::convert<T>(test::make_input(layout.total_size(), d, seed));
  std::vector<float> xf(xt.size());
  for (std::size_t i = 0; i < xt.size(); ++i)
    xf[i] = to_float(xt[i]);
  const stream_key key{seed, seed % 97, static_cast<std::uint32_t>(seed % 5), role::worker};
  const std::vector<std::vector<float>> wants = reference_spans<En>(spec, c, xf, key);
  std::vector<T> out(xt.size());
  if (overflows_output<T>(wants)) {
    // e.g. unbiased random-k's n/k scale on a large value: a 16-bit output cannot hold it
    const std::vector<T> before = out;
    errc got = errc::corrupt_payload;
    try {
      c.apply(cpu, std::span<const T>(xt), std::span<T>(out), key);
      FAIL("a result beyond the output type decoded without an error");
    } catch (const gradcomp::error& e) {
      got = e.code();
    }
    REQUIRE(got == errc::value_out_of_range);
    REQUIRE(std::memcmp(before.data(), out.data(), out.size() * sizeof(T)) == 0);
    return;
  }
  c.apply(cpu, std::span<const T>(xt), std::span<T>(out), key);

  for (std::size_t si = 0; si < c.spans().size(); ++si) {
    const span_desc& sp = c.spans()[si];
    const std::vector<float>& want = wants[si];
    for (std::size_t i = 0; i < sp.size; ++i) {
      const T got = out[sp.begin + i];
      const T exp = from_float<T>(want[i]);
      if (detail::bit_cast<std::uint32_t>(to_float(got)) !=
          detail::bit_cast<std::uint32_t>(to_float(exp))) {
        CAPTURE(spec, value_traits<T>::name, test::to_string(d), seed, si, sp.size, i,
                xf[sp.begin + i], to_float(got), to_float(exp));
        FAIL("mismatch against the reference");
      }
    }
  }
  SUCCEED();
}

/// The compressor settings checked, as spec arguments: a sweep of each compressor's parameters
/// (its registry examples where none is given here) with its natural encoding, the registry
/// examples with the others.
template <class C>
std::vector<std::string> settings() {
  if constexpr (std::is_same_v<C, topk>) {
    return {"0.001", "0.01", "0.1", "0.3", "0.5", "1.0"};
  } else if constexpr (std::is_same_v<C, random_k>) {
    std::vector<std::string> out;
    for (const char* r : {"0.01", "0.1", "0.5", "1.0"})
      for (const char* flags : {"", ",unbiased", ",unbiased,shared_seed", ",shared_seed"})
        out.push_back(std::string(r) + flags);
    return out;
  } else if constexpr (std::is_same_v<C, threshold_v>) {
    return {"0.0", "1e-4", "0.25", "0.3", "2.0"};
  } else if constexpr (std::is_same_v<C, terngrad>) {
    return {"", "clip=2.5", "clip=1"};
  } else if constexpr (std::is_same_v<C, qsgd>) {
    std::vector<std::string> out;
    for (const char* s : {"1", "2", "15", "255", "256"})
      for (const char* bucket : {"", ",bucket=128"})
        out.push_back(std::string(s) + bucket);
    return out;
  } else {
    const auto& examples = runtime::spec_traits<C>::examples;
    return {examples.begin(), examples.end()};
  }
}

/// Every setting of entry En under every granularity and value type, on every distribution.
template <class En>
void check_entry() {
  using C = typename En::compressor_type;
  const std::string name(runtime::spec_traits<C>::name);
  const std::string encoding(runtime::encoding_spec<typename En::encoding_type>::name);
  const model_layout layout = test::odd_layout();
  const auto& examples = runtime::spec_traits<C>::examples;
  const std::vector<std::string> all =
      std::is_same_v<typename En::encoding_type, default_encoding_t<C>>
          ? settings<C>()
          : std::vector<std::string>(examples.begin(), examples.end());
  for (const std::string& args : all) {
    const std::string base = name + (args.empty() ? "" : ":" + args);
    for (std::uint64_t seed : test::seeds(2)) {
      for (distribution d : test::all_distributions) {
        check_spec<En, float>(base + "/layer/" + encoding, layout, d, seed);
        check_spec<En, float>(base + "/flat/" + encoding, layout, d, seed);
        check_spec<En, float>(base + "/bucket:1000/" + encoding, layout, d, seed);
        check_spec<En, half>(base + "/layer/" + encoding, layout, d, seed);
        check_spec<En, bfloat16>(base + "/flat/" + encoding, layout, d, seed);
      }
    }
  }
}

/// check_entry for every entry of the registry's slices whose sparsity is `Sparse`
/// (compositions excepted).
template <bool Sparse, class... Entries>
void check_slice(runtime::type_list<Entries...>) {
  const auto one = []<class En>(En) {
    using C = typename En::compressor_type;
    if constexpr (!requires { typename C::quantizer_type; } && En::scheme_type::is_sparse == Sparse)
      check_entry<En>();
  };
  (one(Entries{}), ...);
}
template <bool Sparse, class... Slices>
void check_registry(runtime::type_list<Slices...>) {
  (check_slice<Sparse>(Slices{}), ...);
}

} // namespace

TEST_CASE("every dense and quantizing scheme of the registry agrees with the reference",
          "[reference][dense]") {
  check_registry<false>(runtime::registry_slices{});
}
TEST_CASE("every sparsifying scheme of the registry agrees with the reference",
          "[reference][sparse]") {
  check_registry<true>(runtime::registry_slices{});
}
