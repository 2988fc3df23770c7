// SPDX-License-Identifier: Apache-2.0
// Sparse schemes on the device equal the CPU byte for byte (messages) and bit for bit (decode,
// decode_add): top-k (ties to the lower index), random-k (biased, unbiased, shared seed with
// implied indices), threshold-v and adaptive threshold, with fp32/fp16/bf16 values, on every
// granularity; ResNet-50 layer-wise and entire-model; hostile sparse messages get the CPU's
// error codes with the output untouched.
#include "device_test_support.cuh"

using namespace gradcomp;
using namespace gradcomp::test;

TEST_CASE("sparse schemes: device messages equal CPU messages", "[cuda][sparse]") {
  check_all_granularities<scheme<topk, layer_span>>({0.1});
  check_all_granularities<scheme<topk, layer_span>>({1.0});
  check_all_granularities<scheme<topk, layer_span, sparse_coo<gradcomp::half>>>({0.01});
  check_all_granularities<scheme<random_k, layer_span>>({0.05});
  check_all_granularities<scheme<random_k, layer_span>>({0.05, true});
  check_all_granularities<scheme<random_k, layer_span, sparse_coo<gradcomp::bfloat16>>>(
      {0.2, true, true});
  check_all_granularities<scheme<threshold_v, layer_span>>({0.5});
  check_all_granularities<scheme<adaptive_threshold, layer_span>>({});
}

TEST_CASE("sparse schemes on ResNet-50, layer-wise and entire-model", "[cuda][sparse][resnet50]") {
  const model_layout layout = models::resnet50_imagenet();
  const auto x = make_input(layout.total_size(), distribution::normal, 19);
  const stream_key key{4, 100, 2, role::worker};
  check_scheme(scheme<topk, layer_span>{{0.01}}, layout, x, key);
  check_scheme(scheme<topk, flat_span>{{0.01}}, layout, x, key);
  check_scheme(scheme<random_k, layer_span>{{0.01, false, true}}, layout, x, key);
  check_scheme(scheme<threshold_v, flat_span>{{1e-3}}, layout, x, key);
}

TEST_CASE("sparse schemes with per-layer rules: ratios, raw layers", "[cuda][sparse][rules]") {
  const model_layout layout = odd_layout();
  const auto x = make_input(layout.total_size(), distribution::normal, 5);
  layer_rules rules;
  rules.identity_below = 64; // small layers sent raw, in the gradient's own type
  rules.overrides.push_back({layout[15].name, 0.5});
  check_scheme(scheme<topk, layer_span>{{0.05}, {}, {}, rules}, layout, x, {5, 6, 7, role::master});
  check_scheme(scheme<random_k, layer_span>{{0.1, true, true}, {}, {}, rules}, layout,
               convert<gradcomp::bfloat16>(x), {2, 3, 4});
  layer_rules raw_only; // adaptive threshold has no parameter to override
  raw_only.identity_below = 64;
  check_scheme(scheme<adaptive_threshold, layer_span>{{}, {}, {}, raw_only}, layout,
               convert<gradcomp::half>(x), {1, 2, 3});
  using S = scheme<threshold_v, layer_span>;
  codec<S> host({{0.5}, {}, {}, rules}, layout);
  codec<S> dev({{0.5}, {}, {}, rules}, layout);
  check_resealed_edits(host, dev, x); // raw values and sizes edited too
}

TEST_CASE("hostile sparse messages: the CPU's errors, output untouched", "[cuda][sparse][robust]") {
  using S = scheme<topk, layer_span>;
  const model_layout layout = odd_layout();
  const auto x = make_input(layout.total_size(), distribution::normal, 4);
  codec<S> host({{0.25}}, layout);
  codec<S> dev({{0.25}}, layout);
  check_resealed_edits(host, dev, x);
}

GRADCOMP_CUDA_TEST_MAIN("test_device_sparse")
