// SPDX-License-Identifier: Apache-2.0
// Compositions compose<S, Q> on the device equal the CPU byte for byte (messages) and bit for bit
// (decode, decode_add): every sparsifier with TernGrad, QSGD (span norms and buckets), natural,
// sign and scaled sign, on every granularity and gradient type; per-layer ratios; ResNet-50
// layer-wise and entire-model with a launch count that does not grow with the layers; hostile
// messages get the CPU's error codes with the output untouched.
#include "device_test_support.cuh"

using namespace gradcomp;
using namespace gradcomp::test;

TEST_CASE("compositions: device messages equal CPU messages", "[cuda][composite]") {
  check_all_granularities<scheme<compose<topk, terngrad>, layer_span>>({{0.1}, {}});
  check_all_granularities<scheme<compose<topk, qsgd>, layer_span>>({{0.25}, {15}});
  check_all_granularities<scheme<compose<topk, qsgd>, layer_span>>({{0.5}, {7, 64}});
  check_all_granularities<scheme<compose<random_k, natural>, layer_span>>({{0.2, true}, {}});
  check_all_granularities<scheme<compose<random_k, scaled_sign>, layer_span>>({{0.2}, {}});
  check_all_granularities<scheme<compose<threshold_v, qsgd>, layer_span>>({{0.5}, {255}});
  check_all_granularities<scheme<compose<adaptive_threshold, terngrad>, layer_span>>({{}, {}});
  check_all_granularities<scheme<compose<topk, sign_sgd>, layer_span>>({{1.0}, {}});
}

TEST_CASE("compositions with per-layer rules: ratios, raw layers", "[cuda][composite][rules]") {
  const model_layout layout = odd_layout();
  const auto x = make_input(layout.total_size(), distribution::normal, 3);
  layer_rules rules;
  rules.overrides.push_back({layout[15].name, 0.5});
  rules.overrides.push_back({layout[3].name, 1.0});
  check_scheme(scheme<compose<topk, qsgd>, layer_span>{{{0.05}, {255}}, {}, {}, rules}, layout, x,
               {5, 6, 7, role::master});
  rules.identity_below = 64; // small layers sent raw, in the gradient's own type
  using TQ = scheme<compose<threshold_v, terngrad>, layer_span>;
  check_scheme(TQ{{{0.5}, {}}, {}, {}, rules}, layout, x, {5, 6, 7, role::master});
  check_scheme(TQ{{{0.5}, {}}, {}, {}, rules}, layout, convert<gradcomp::half>(x), {1, 2, 3});
  codec<TQ> host({{{0.5}, {}}, {}, {}, rules}, layout);
  codec<TQ> dev({{{0.5}, {}}, {}, {}, rules}, layout);
  check_resealed_edits(host, dev, x); // raw values and sizes edited too
}

TEST_CASE("compositions on ResNet-50; launches independent of the layers",
          "[cuda][composite][resnet50]") {
  const model_layout layout = models::resnet50_imagenet();
  const auto x = make_input(layout.total_size(), distribution::normal, 19);
  const stream_key key{4, 100, 2, role::worker};
  check_scheme(scheme<compose<topk, terngrad>, layer_span>{{{0.01}, {}}}, layout, x, key);
  check_scheme(scheme<compose<topk, terngrad>, flat_span>{{{0.01}, {}}}, layout, x, key);
  check_scheme(scheme<compose<random_k, qsgd>, layer_span>{{{0.01, true}, {255}}}, layout, x, key);
  const model_layout one = model_layout::from_sizes({layout.total_size()});
  on_device<float> g(x);
  const auto launches = [&](const model_layout& l) {
    codec<scheme<compose<topk, qsgd>, layer_span>> dev({{{0.01}, {15}}}, l);
    on_device<std::byte> m(dev.max_encoded_bytes());
    dev.encode(cuda_policy{}, std::span<const float>(g.d.data(), g.n), m.span(), key);
    return cuda_stats(dev).last_launch_count;
  };
  REQUIRE(launches(layout) == launches(one));
}

TEST_CASE("hostile composite messages: the CPU's errors, output untouched",
          "[cuda][composite][robust]") {
  using S = scheme<compose<topk, qsgd>, layer_span>;
  const model_layout layout = odd_layout();
  const auto x = make_input(layout.total_size(), distribution::normal, 4);
  const S s{{{0.25}, {7}}};
  codec<S> host(s, layout);
  codec<S> dev(s, layout);
  check_resealed_edits(host, dev, x);
  // a non-finite gradient: the CPU's error
  auto nan_x = x;
  nan_x[7] = std::numeric_limits<float>::quiet_NaN();
  on_device<float> g(nan_x);
  on_device<std::byte> m(dev.max_encoded_bytes());
  REQUIRE_THROWS_AS(
      dev.encode(cuda_policy{}, std::span<const float>(g.d.data(), g.n), m.span(), {}),
      gradcomp::error);
}

GRADCOMP_CUDA_TEST_MAIN("test_device_composite")
