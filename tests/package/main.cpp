// SPDX-License-Identifier: Apache-2.0
// Built against an installed gradcomp by the package test, once per set of compiler flags. Checks
// a round trip, then runs Algorithm 1 (three workers and a master, error feedback on both sides,
// a learning rate that is not a power of two) for several schemes and prints one digest of every
// byte sent and every update received. Builds with and without FMA contraction must print the
// same digest: ranks built with different flags must not disagree. Built with
// GRADCOMP_PACKAGE_RUNTIME (linking gradcomp::runtime), it also runs the same schemes by their
// spec strings through any_codec and requires the same digest.
#include <gradcomp/gradcomp.hpp>
#ifdef GRADCOMP_PACKAGE_RUNTIME
#include <gradcomp/runtime/any_codec.hpp>
#endif

#include <cstdint>
#include <cstdio>
#include <span>
#include <vector>

namespace {

using namespace gradcomp;

struct fnv {
  std::uint64_t h = 0xcbf29ce484222325ull;
  void add(std::span<const std::byte> bytes) {
    for (std::byte b : bytes) {
      h = (h ^ static_cast<std::uint64_t>(b)) * 0x100000001b3ull;
    }
  }
};

/// A value in [-1, 1) from an integer hash: the inputs themselves must not depend on the flags
/// (no transcendental functions, no expressions a compiler could contract).
float unit_value(std::uint64_t k) {
  k = (k ^ (k >> 33)) * 0xff51afd7ed558ccdull;
  k = (k ^ (k >> 33)) * 0xc4ceb9fe1a85ec53ull;
  k ^= k >> 33;
  return static_cast<float>(static_cast<std::int64_t>(k >> 40) - (1 << 23)) * 0x1p-23f;
}

/// Worker r's gradient at a step: per-layer scales over four orders of magnitude.
std::vector<float> gradient(const model_layout& layout, std::size_t r, std::uint64_t step) {
  static constexpr float scales[5] = {1e-3f, 1e-2f, 1e-1f, 1.0f, 10.0f};
  std::vector<float> g(layout.total_size());
  for (std::size_t l = 0; l < layout.num_layers(); ++l) {
    for (std::size_t i = 0; i < layout[l].size; ++i) {
      const std::size_t k = layout[l].offset + i;
      g[k] = scales[l % 5] * unit_value((step << 48) ^ (std::uint64_t{r} << 40) ^ k);
    }
  }
  return g;
}

template <class W, class M>
void run(fnv& digest, const W& q_w, const M& q_m, const model_layout& layout) {
  constexpr std::size_t n = 3;
  std::vector<worker<W, M>> workers;
  for (std::size_t r = 0; r < n; ++r) {
    workers.emplace_back(q_w, q_m, layout, static_cast<std::uint32_t>(r),
                         typename worker<W, M>::options{11, true});
  }
  master<W, M> ps(q_w, q_m, layout, n, {11, aggregation::mean, true});
  std::vector<float> update(layout.total_size());
  for (std::uint64_t step = 0; step < 4; ++step) {
    ps.begin(step);
    for (std::size_t r = 0; r < n; ++r) {
      const auto g = gradient(layout, r, step);
      const auto msg = workers[r].compress(cpu, std::span<const float>(g), step, 0.1f);
      digest.add(msg);
      ps.receive(cpu, msg);
    }
    const auto down = ps.broadcast(cpu);
    digest.add(down);
    for (auto& w : workers) {
      w.decompress(cpu, down, step, std::span<float>(update));
      digest.add(std::as_bytes(std::span<const float>(update)));
    }
  }
}

/// DGC's momentum correction for a few steps (its momentum products feed additions too).
void run_dgc(fnv& digest, const model_layout& layout) {
  using S = scheme<topk, layer_span>;
  dgc_momentum<S> dgc(S{{0.05}}, layout, {0.9f, 0.0f, true});
  std::vector<std::byte> msg(dgc.max_encoded_bytes());
  for (std::uint64_t step = 0; step < 4; ++step) {
    const auto g = gradient(layout, 0, step);
    const std::size_t bytes =
        dgc.encode(cpu, std::span<const float>(g), std::span<std::byte>(msg), stream_key{11, step});
    digest.add(std::span<const std::byte>(msg.data(), bytes));
  }
}

bool round_trip() {
  codec c(scheme<topk, layer_span>{{0.5}}, model_layout::from_sizes({4, 2}));
  std::vector<float> g{1.f, -4.f, 2.f, 0.5f, 3.f, -1.f}, q(6);
  c.apply(cpu, std::span<const float>(g), std::span<float>(q), stream_key{});
  const std::vector<float> want{0.f, -4.f, 2.f, 0.f, 3.f, 0.f};
  return q == want;
}

} // namespace

int main() {
  if (!round_trip()) {
    std::printf("round trip failed\n");
    return 1;
  }
  const model_layout layout = model_layout::from_sizes({3000, 64, 1000, 10, 2500, 7});
  using dense_m = scheme<identity, flat_span>;
  fnv d;
  run(d, scheme<topk, layer_span>{{0.05}}, scheme<qsgd, flat_span>{{255}}, layout);
  run(d, scheme<random_k, layer_span>{{0.1, true, false}}, dense_m{}, layout);
  run(d, scheme<random_k, flat_span>{{0.1, true, true}}, scheme<terngrad, layer_span>{}, layout);
  run(d, scheme<terngrad, layer_span>{{true, 2.5}}, scheme<natural, flat_span>{}, layout);
  run(d, scheme<qsgd, bucket_span>{{15, 128}, {1024}}, scheme<scaled_sign, layer_span>{}, layout);
  run(d, scheme<stochastic_rounding<bfloat16>, layer_span>{}, dense_m{}, layout);
  run(d, scheme<compose<topk, qsgd>, layer_span>{{{0.1}, {15}}},
      scheme<topk, flat_span, sparse_coo<half>>{{0.2}}, layout);
  run(d, scheme<threshold_v, layer_span>{{0.05}}, scheme<adaptive_threshold, flat_span>{}, layout);
  fnv algorithm1_only = d;
  run_dgc(d, layout);
  std::printf("digest %016llx\n", static_cast<unsigned long long>(d.h));
#ifdef GRADCOMP_PACKAGE_RUNTIME
  fnv r;
  const auto spec_run = [&](const char* w, const char* m) {
    run(r, runtime_scheme{w}, runtime_scheme{m}, layout);
  };
  spec_run("topk:0.05/layer", "qsgd:255/flat");
  spec_run("random_k:0.1,unbiased/layer", "identity/flat");
  spec_run("random_k:0.1,unbiased,shared_seed/flat", "terngrad/layer");
  spec_run("terngrad:clip=2.5/layer", "natural/flat");
  spec_run("qsgd:15,bucket=128/bucket:1024", "scaled_sign/layer");
  spec_run("sr_bf16/layer", "identity");
  spec_run("compose(topk:0.1,qsgd:15)/layer", "topk:0.2/flat/coo-f16");
  spec_run("threshold_v:0.05/layer", "adaptive_threshold/flat");
  std::printf("runtime digest %016llx\n", static_cast<unsigned long long>(r.h));
  if (r.h != algorithm1_only.h) {
    std::printf("the spec-built schemes computed other bytes than the typed ones\n");
    return 1;
  }
#else
  (void)algorithm1_only;
#endif
  return 0;
}
