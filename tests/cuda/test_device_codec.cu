// SPDX-License-Identifier: Apache-2.0
// The CUDA backend against the CPU codec on real layouts and hostile input: per-layer rules (raw
// spans), ResNet-50 layer-wise and entire-model, a launch count that does not grow with the
// number of layers, the CPU's errors for hostile messages and bad gradients (output untouched).
#include "device_test_support.cuh"

using namespace gradcomp;
using namespace gradcomp::test;

TEST_CASE("per-layer rules: raw spans and per-layer parameters on the device", "[cuda][rules]") {
  const model_layout layout = test::odd_layout();
  const auto x = test::make_input(layout.total_size(), test::distribution::normal, 3);
  layer_rules rules;
  rules.identity_below = 64;
  rules.overrides.push_back({layout[15].name, 3.0});
  check_scheme(scheme<qsgd, layer_span>{{255}, {}, {}, rules}, layout, x, {5, 6, 7, role::master});
  check_scheme(scheme<qsgd, layer_span>{{255}, {}, {}, rules}, layout,
               test::convert<gradcomp::half>(x), {5, 6, 7, role::master});
  check_scheme(scheme<terngrad, layer_span>{{}, {}, {}, rules}, layout, x, {1, 2, 3, role::worker});
}

TEST_CASE("a real model layout: ResNet-50, layer-wise and entire-model", "[cuda][resnet50]") {
  const model_layout layout = models::resnet50_imagenet();
  const auto x = test::make_input(layout.total_size(), test::distribution::normal, 9);
  const stream_key key{42, 1000, 0, role::worker};
  check_scheme(scheme<qsgd, layer_span>{{15}}, layout, x, key);
  check_scheme(scheme<qsgd, flat_span>{{15}}, layout, x, key);
  check_scheme(scheme<terngrad, layer_span>{}, layout, x, key);
  check_scheme(scheme<scaled_sign, flat_span>{}, layout, x, key);
}

TEST_CASE("the launch count does not grow with the number of layers", "[cuda][launches]") {
  const model_layout many = models::resnet50_imagenet();
  const model_layout one = model_layout::from_sizes({many.total_size()});
  const auto x = test::make_input(many.total_size(), test::distribution::normal, 1);
  on_device<float> g(x);
  const auto launches = [&](const model_layout& layout) {
    codec<scheme<qsgd, layer_span>> dev({{255}}, layout);
    on_device<std::byte> m(dev.max_encoded_bytes());
    dev.encode(cuda_policy{}, std::span<const float>(g.d.data(), g.n), m.span(), {});
    return cuda_stats(dev).last_launch_count;
  };
  CAPTURE(many.num_layers());
  REQUIRE(launches(many) == launches(one));
}

TEST_CASE("hostile device messages get the CPU's errors, output untouched", "[cuda][robust]") {
  using S = scheme<qsgd, layer_span>;
  const model_layout layout = test::odd_layout();
  const auto x = test::make_input(layout.total_size(), test::distribution::normal, 4);
  codec<S> host({{7}}, layout);
  codec<S> dev({{7}}, layout);
  std::vector<std::byte> msg(host.max_encoded_bytes());
  msg.resize(host.encode(cpu, std::span<const float>(x), std::span<std::byte>(msg), {}));
  const auto reseal = [](std::vector<std::byte>& m) { detail::seal_message(m); };
  // a flipped bit anywhere: checksum (or magic/version)
  for (std::size_t pos = 0; pos < msg.size(); pos += 1 + msg.size() / 97) {
    auto bad = msg;
    bad[pos] ^= std::byte{0x10};
    REQUIRE(device_decode_error(dev, bad) == host_decode_error(host, bad));
  }
  // re-sealed edits of the payload: invalid levels, scales, padding
  for (std::size_t pos = 56; pos < msg.size(); pos += 1 + msg.size() / 211) {
    auto bad = msg;
    bad[pos] = std::byte{0xff};
    reseal(bad);
    if (host_decode_error(host, bad) == errc::invalid_parameter)
      continue; // still valid
    REQUIRE(device_decode_error(dev, bad) == host_decode_error(host, bad));
  }
  auto shorter = msg;
  shorter.resize(40);
  REQUIRE(device_decode_error(dev, shorter) == errc::truncated_message);
}

TEST_CASE("non-finite and out-of-range gradients: the CPU's errors", "[cuda][robust]") {
  const model_layout layout = test::odd_layout();
  auto x = test::make_input(layout.total_size(), test::distribution::normal, 4);
  x[700] = std::numeric_limits<float>::quiet_NaN();
  const auto error_of = [&](auto s, const std::vector<float>& v) {
    codec<decltype(s)> dev(s, layout);
    on_device<float> g(v);
    on_device<std::byte> m(dev.max_encoded_bytes());
    try {
      dev.encode(cuda_policy{}, std::span<const float>(g.d.data(), g.n), m.span(), {});
    } catch (const gradcomp::error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  const auto cpu_error_of = [&](auto s, const std::vector<float>& v) {
    codec<decltype(s)> c(s, layout);
    std::vector<std::byte> m(c.max_encoded_bytes());
    try {
      c.encode(cpu, std::span<const float>(v), std::span<std::byte>(m), {});
    } catch (const gradcomp::error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  REQUIRE(error_of(scheme<terngrad, layer_span>{}, x) ==
          cpu_error_of(scheme<terngrad, layer_span>{}, x));
  REQUIRE(error_of(scheme<sign_sgd, flat_span>{}, x) ==
          cpu_error_of(scheme<sign_sgd, flat_span>{}, x));
  REQUIRE(error_of(scheme<qsgd, bucket_span>{{15}, {1000}}, x) ==
          cpu_error_of(scheme<qsgd, bucket_span>{{15}, {1000}}, x));
  auto in_raw = test::make_input(layout.total_size(), test::distribution::normal, 4);
  in_raw[50] = std::numeric_limits<float>::infinity(); // in a 33-element layer sent raw
  scheme<terngrad, layer_span> raw{};
  raw.rules.identity_below = 64;
  REQUIRE(error_of(raw, in_raw) == cpu_error_of(raw, in_raw));
  REQUIRE(error_of(raw, in_raw).find("non_finite_input") != std::string::npos);
  // kept sparse values beyond fp16: the CPU's error, in the CPU's span order
  using SH = scheme<topk, layer_span, sparse_coo<gradcomp::half>>;
  auto kept = test::make_input(layout.total_size(), test::distribution::normal, 7);
  kept[900] = 1e6f; // in layer 13, and top-k keeps it
  REQUIRE(error_of(SH{{0.1}}, kept) == cpu_error_of(SH{{0.1}}, kept));
  REQUIRE(error_of(SH{{0.1}}, kept).find("value_out_of_range") != std::string::npos);
  kept[2600] = std::numeric_limits<float>::quiet_NaN(); // a later layer: still the overflow
  REQUIRE(error_of(SH{{0.1}}, kept) == cpu_error_of(SH{{0.1}}, kept));
  kept[100] = std::numeric_limits<float>::quiet_NaN(); // an earlier layer: its NaN first
  REQUIRE(error_of(SH{{0.1}}, kept) == cpu_error_of(SH{{0.1}}, kept));
  REQUIRE(error_of(SH{{0.1}}, kept).find("non_finite_input") != std::string::npos);
  // a value beyond fp16 that random-k may leave out: the CPU's message or the CPU's error
  using RH = scheme<random_k, layer_span, sparse_coo<gradcomp::half>>;
  auto maybe = test::make_input(layout.total_size(), test::distribution::normal, 8);
  maybe[900] = 1e6f;
  for (std::uint64_t step = 0; step < 4; ++step) {
    CAPTURE(step);
    const stream_key key{1, step, 0, role::worker};
    codec<RH> host({{0.05}}, layout);
    codec<RH> dev({{0.05}}, layout);
    std::vector<std::byte> want(host.max_encoded_bytes());
    std::string cpu_what = "accepted", dev_what = "accepted";
    try {
      want.resize(host.encode(cpu, std::span<const float>(maybe), std::span<std::byte>(want), key));
    } catch (const gradcomp::error& e) {
      cpu_what = e.what();
    }
    on_device<float> g(maybe);
    on_device<std::byte> m(dev.max_encoded_bytes());
    std::size_t bytes = 0;
    try {
      bytes = dev.encode(cuda_policy{}, std::span<const float>(g.d.data(), g.n), m.span(), key);
    } catch (const gradcomp::error& e) {
      dev_what = e.what();
    }
    REQUIRE(dev_what == cpu_what);
    if (cpu_what == "accepted") {
      REQUIRE(bytes == want.size());
      const std::vector<std::byte> got = m.host();
      REQUIRE(std::equal(want.begin(), want.end(), got.begin()));
    }
  }
  auto big = test::make_input(layout.total_size(), test::distribution::normal, 5);
  big[900] = 1e6f; // overflows fp16
  using H = scheme<identity, layer_span, dense<gradcomp::half>>;
  REQUIRE(error_of(H{}, big) == cpu_error_of(H{}, big));
  REQUIRE(error_of(H{}, big).find("value_out_of_range") != std::string::npos);
}

TEST_CASE("a decode that would overflow a 16-bit output or a sum: the CPU's error, untouched",
          "[cuda][robust][range]") {
  const model_layout layout = test::odd_layout();
  auto x = test::make_input(layout.total_size(), test::distribution::normal, 6);
  x[900] = 1e6f; // finite in fp32, beyond fp16
  const auto check = [&](auto s, const std::vector<float>& g, auto out_value, bool twice) {
    using S = decltype(s);
    using T = decltype(out_value);
    codec<S> host(s, layout);
    codec<S> dev(s, layout);
    std::vector<std::byte> msg(host.max_encoded_bytes());
    msg.resize(host.encode(cpu, std::span<const float>(g), std::span<std::byte>(msg), {}));
    on_device<std::byte> m(msg);
    const std::span<const std::byte> dm(m.d.data(), m.n);
    std::vector<T> h(layout.total_size(), out_value);
    on_device<T> out(h);
    if (twice) { // a first decode_add that fits
      host.decode_add(cpu, std::span<const std::byte>(msg), std::span<T>(h));
      dev.decode_add(cuda_policy{}, dm, out.span());
    }
    const std::vector<T> before = out.host();
    REQUIRE(bit_differences(before, h) == 0);
    for (const bool add : {true, false}) {
      if (twice && !add) {
        continue; // a plain decode of that message fits
      }
      std::string cpu_what = "accepted", dev_what = "accepted";
      try {
        add ? host.decode_add(cpu, std::span<const std::byte>(msg), std::span<T>(h))
            : host.decode(cpu, std::span<const std::byte>(msg), std::span<T>(h));
      } catch (const gradcomp::error& e) {
        cpu_what = e.what();
      }
      try {
        add ? dev.decode_add(cuda_policy{}, dm, out.span())
            : dev.decode(cuda_policy{}, dm, out.span());
      } catch (const gradcomp::error& e) {
        dev_what = e.what();
      }
      CAPTURE(std::string(S::compressor_type::name), add);
      REQUIRE(cpu_what.find("value_out_of_range") != std::string::npos);
      REQUIRE(dev_what == cpu_what);
      REQUIRE(bit_differences(out.host(), before) == 0);
    }
  };
  const gradcomp::half h0 = to_half(0.0f);
  check(scheme<identity, layer_span>{}, x, h0, false);
  check(scheme<topk, layer_span>{{0.1}}, x, h0, false);
  check(scheme<qsgd, layer_span>{{255}}, x, h0, false);
  check(scheme<compose<topk, terngrad>, layer_span>{{{0.1}, {}}}, x, h0, false);
  scheme<terngrad, layer_span> raw{};
  raw.rules.identity_below = 64;
  check(raw, x, h0, false);
  auto huge = x;
  huge[900] = 3e38f; // fits fp32 once, not twice
  check(scheme<identity, flat_span>{}, huge, 0.0f, true);
  check(scheme<random_k, flat_span>{{1.0}}, huge, 0.0f, true);
}

GRADCOMP_CUDA_TEST_MAIN("test_device_codec")
