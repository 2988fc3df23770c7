// SPDX-License-Identifier: Apache-2.0
// Model layouts, the paper's layer tables, granularity plans and per-layer rules.

#include <gradcomp/gradcomp.hpp>

#include <catch2/catch.hpp>

#include <numeric>
#include <random>
#include <string>
#include <vector>

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

namespace {
std::vector<std::string> names_of(const model_layout& l) {
  std::vector<std::string> out;
  for (const auto& t : l.layers()) {
    out.push_back(t.name);
  }
  return out;
}
} // namespace

TEST_CASE("the sharded exchange cuts at tensor boundaries within 1/16 share, inside tensors "
          "otherwise",
          "[layout][sharding]") {
  SECTION("an exact boundary") {
    const auto shards = shard_model(model_layout::from_sizes({100, 100, 100, 100}), 2, 7);
    REQUIRE(shards.size() == 2);
    CHECK(shards[0].begin == 0);
    CHECK(shards[0].size == 200);
    CHECK(shards[1].begin == 200);
    CHECK(names_of(shards[0].layout) == std::vector<std::string>{"layer0", "layer1"});
    CHECK(names_of(shards[1].layout) == std::vector<std::string>{"layer2", "layer3"});
    CHECK(shards[1].layout[0].offset == 0);
    CHECK(shards[0].seed == shard_seed(7, 0));
    CHECK(shards[1].seed == shard_seed(7, 1));
    CHECK(shards[0].seed != shards[1].seed);
    CHECK(shard_seed(7, 0) != shard_seed(8, 0));
  }
  SECTION("the nearest boundary within d / 16n moves the cut") {
    // d = 1000, ideal cut 500, tolerance 31: boundaries at 300 (200 away) and 520 (20 away)
    const auto shards = shard_model(model_layout::from_sizes({300, 220, 480}), 2, 0);
    CHECK(shards[0].size == 520);
    CHECK(names_of(shards[1].layout) == std::vector<std::string>{"layer2"});
    // 40 away: the cut stays at 500, inside the tensor
    const auto inside = shard_model(model_layout::from_sizes({300, 240, 460}), 2, 0);
    CHECK(inside[0].size == 500);
    CHECK(names_of(inside[1].layout) == std::vector<std::string>{"layer1[200:240]", "layer2"});
  }
  SECTION("no boundary near: the tensor is cut, its pieces named by element range") {
    // d = 1100, ideal cut 550, tolerance 34: the nearest boundary (100) is 450 away
    const auto shards =
        shard_model(model_layout::from_sizes({10, 90, 1000}, {"emb", "bias", "fc"}), 2, 0);
    CHECK(shards[0].size == 550);
    CHECK(names_of(shards[0].layout) == std::vector<std::string>{"emb", "bias", "fc[0:450]"});
    CHECK(names_of(shards[1].layout) == std::vector<std::string>{"fc[450:1000]"});
    CHECK(shards[1].layout[0].size == 550);
  }
  SECTION("zero-length tensors belong to the shard their offset falls in") {
    const auto shards = shard_model(model_layout::from_sizes({100, 0, 100, 0}), 2, 0);
    CHECK(names_of(shards[0].layout) == std::vector<std::string>{"layer0"});
    CHECK(names_of(shards[1].layout) == std::vector<std::string>{"layer1", "layer2", "layer3"});
  }
  SECTION("bad requests are named errors") {
    const model_layout l = model_layout::from_sizes({3, 2});
    CHECK_THROWS_AS(shard_model(l, 0, 0), error);
    CHECK_THROWS_WITH(shard_model(l, 6, 0), Catch::Contains("5 elements cannot be cut into 6"));
    CHECK(shard_model(l, 5, 0).back().size == 1);
  }
}

TEST_CASE("shards tile the model, each within 1/8 of its share", "[layout][sharding]") {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<std::size_t> sizes(1 + rng() % 12);
    for (auto& s : sizes) {
      s = rng() % 5 == 0 ? 0 : rng() % 3000;
    }
    const model_layout l = model_layout::from_sizes(sizes);
    const std::size_t d = l.total_size(), n = 1 + rng() % 9;
    if (d < n) {
      continue;
    }
    const auto shards = shard_model(l, n, trial);
    std::size_t at = 0, tensors = 0;
    for (std::size_t s = 0; s < n; ++s) {
      INFO("trial " << trial << ", shard " << s << " of " << n << ", d " << d);
      REQUIRE(shards[s].begin == at);
      REQUIRE(shards[s].size >= 1);
      REQUIRE(shards[s].layout.total_size() == shards[s].size);
      const std::size_t share = d / n, tol = d / (16 * n);
      REQUIRE(shards[s].size + 2 * tol + 1 >= share);
      REQUIRE(shards[s].size <= share + 2 * tol + 2);
      for (const auto& piece : shards[s].layout.layers()) { // each piece is its tensor's range
        const std::string base = piece.name.substr(0, piece.name.find('['));
        const auto t = l.find(base);
        REQUIRE(t.has_value());
        tensors += piece.size == l[*t].size ? 1 : 0;
        REQUIRE(l[*t].offset <= at + piece.offset);
        REQUIRE(at + piece.offset + piece.size <= l[*t].offset + l[*t].size);
      }
      at += shards[s].size;
    }
    REQUIRE(at == d);
    REQUIRE(tensors + (n - 1) >= l.num_layers()); // at most n - 1 tensors are cut
  }
}
