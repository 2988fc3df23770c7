// SPDX-License-Identifier: Apache-2.0
// Model layouts, the paper's layer tables, granularity plans and per-layer rules.

#include <gradcomp/gradcomp.hpp>

#include <catch2/catch.hpp>

#include <numeric>

using namespace gradcomp;

TEST_CASE("the paper's models have their real tensor counts and sizes", "[layout][models]") {
  const model_layout r50 = models::resnet50_imagenet();
  REQUIRE(r50.num_layers() == 161);
  REQUIRE(r50.total_size() == 25'557'032);
  REQUIRE(r50[0].name == "conv1.weight");
  REQUIRE(r50[0].size == 9408);
  REQUIRE(r50[159].name == "fc.weight");
  REQUIRE(r50[159].size == 2'048'000);
  const model_layout r9 = models::resnet9_cifar10();
  REQUIRE(r9.num_layers() == 25);
  REQUIRE(r9.total_size() == 6'573'120);
  const model_layout alex = models::alexnet_cifar10();
  REQUIRE(alex.num_layers() == 12);
  REQUIRE(alex.total_size() == 2'472'266);
}

TEST_CASE("layouts are validated", "[layout]") {
  const model_layout l = model_layout::from_sizes({3, 0, 5}, {"a", "b", "c"});
  REQUIRE(l.total_size() == 8);
  REQUIRE(l[2].offset == 3);
  REQUIRE(l.find("c") == 2);
  REQUIRE_FALSE(l.find("zz").has_value());
  auto code_of = [](auto&& f) {
    try {
      f();
    } catch (const gradcomp::error& e) {
      return e.code();
    }
    return errc::corrupt_payload; // not thrown: a value no layout check uses
  };
  REQUIRE(code_of([] {
            model_layout::from_layers({{"a", 0, 4}, {"b", 3, 2}});
          }) == errc::invalid_layout); // overlap
  REQUIRE(code_of([] {
            model_layout::from_layers({{"a", 0, 4}, {"b", 5, 2}});
          }) == errc::invalid_layout); // gap
  REQUIRE(code_of([] {
            model_layout::from_layers({{"a", 0, 4}, {"a", 4, 2}});
          }) == errc::invalid_layout); // duplicate name
  REQUIRE(code_of([] { model_layout::from_layers({{"", 0, 4}}); }) == errc::invalid_layout);
  REQUIRE(code_of([] { model_layout::from_sizes({SIZE_MAX, 2}); }) == errc::invalid_layout);
}

TEST_CASE("granularities plan the spans they promise", "[granularity]") {
  const model_layout l = model_layout::from_sizes({10, 0, 7}, {"w", "empty", "b"});
  const auto flat = flat_span{}.plan(l, {});
  REQUIRE(flat.size() == 1);
  REQUIRE(flat[0].size == 17);
  const auto layer = layer_span{}.plan(l, {});
  REQUIRE(layer.size() == 3);
  REQUIRE(layer[1].size == 0);
  REQUIRE(layer[2].begin == 10);
  const auto bucket = bucket_span{4}.plan(l, {});
  REQUIRE(bucket.size() == 5);
  REQUIRE(bucket[4].size == 1);
  REQUIRE_THROWS_AS(bucket_span{0}.plan(l, {}), gradcomp::error);
  // rules need per-layer spans
  REQUIRE_THROWS_AS(flat_span{}.plan(l, {5, {}}), gradcomp::error);
  REQUIRE_THROWS_AS(bucket_span{4}.plan(l, {5, {}}), gradcomp::error);
}

TEST_CASE("per-layer rules: identity below a size and parameter overrides",
          "[granularity][rules]") {
  const model_layout l = model_layout::from_sizes({1000, 10, 500}, {"conv", "bias", "fc"});
  scheme<topk, layer_span> s{{0.01}};
  s.rules = {100, {{"fc", 0.1}}};
  codec c(s, l);
  REQUIRE(c.spans()[0].compressed);
  REQUIRE_FALSE(c.spans()[1].compressed);
  REQUIRE(c.span_compressor(0).count(1000) == 10);
  REQUIRE(c.span_compressor(2).count(500) == 50);
  std::vector<float> g(1510);
  std::iota(g.begin(), g.end(), 1.0f);
  std::vector<float> q(g.size());
  c.apply(cpu, std::span<const float>(g), std::span<float>(q), {});
  // the raw layer arrives unchanged, the overridden layer keeps 50
  for (std::size_t i = 1000; i < 1010; ++i)
    REQUIRE(q[i] == g[i]);
  REQUIRE(std::count_if(q.begin() + 1010, q.end(), [](float v) { return v != 0; }) == 50);
  // unknown layer names and invalid override values are rejected when the codec is built
  s.rules = {0, {{"nope", 0.1}}};
  REQUIRE_THROWS_AS(codec(s, l), gradcomp::error);
  s.rules = {0, {{"fc", 1.5}}};
  REQUIRE_THROWS_AS(codec(s, l), gradcomp::error);
  scheme<adaptive_threshold, layer_span> a{};
  a.rules = {0, {{"fc", 0.5}}};
  REQUIRE_THROWS_AS(codec(a, l), gradcomp::error); // no parameter to override
}

TEST_CASE("layer-wise k is the per-layer sum of ceil(r d_j)", "[granularity][topk]") {
  const model_layout r50 = models::resnet50_imagenet();
  for (double r : {0.001, 0.01, 0.1}) {
    codec c(scheme<topk, layer_span>{{r}}, r50);
    std::size_t sum = 0;
    for (const auto& layer : r50.layers()) {
      sum += layer.size == 0
                 ? 0
                 : static_cast<std::size_t>(std::ceil(r * static_cast<double>(layer.size) - 1e-9));
    }
    std::size_t k = 0;
    for (std::size_t s = 0; s < c.spans().size(); ++s)
      k += c.span_compressor(s).count(c.spans()[s].size);
    REQUIRE(k == sum);
    REQUIRE(k >= topk{r}.count(r50.total_size()));
  }
}
