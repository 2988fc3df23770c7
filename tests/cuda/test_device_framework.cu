// SPDX-License-Identifier: Apache-2.0
// Algorithm 1 on device buffers: workers with Q_W and error feedback, a master with Q_M and its
// own error feedback, every buffer in device memory under cuda_policy. The body is the one the
// CPU suite checks against codec calls (support/algorithm1_cases.hpp); here the device run must
// equal the CPU run bit for bit: messages, broadcasts, updates and both sides' residuals. The
// in-process cluster and DGC momentum correction are checked the same way.

#include "../support/algorithm1_cases.hpp"
#include "device_test_support.cuh"

using namespace gradcomp;

namespace {

/// The device fixture: zero-filled device buffers, cuda_policy on the default stream.
struct cuda_fixture {
  using backend_tag = cuda_tag;
  cuda_policy exec{};
  template <class T>
  detail::buffer_t<cuda_tag, T> buffer(std::size_t n) const {
    return detail::buffer_t<cuda_tag, T>(n);
  }
  template <class T>
  detail::buffer_t<cuda_tag, T> upload(const std::vector<T>& v) const {
    detail::buffer_t<cuda_tag, T> d(v.size());
    detail::copy_to(exec, d.data(), v.data(), v.size() * sizeof(T));
    return d;
  }
  template <class T>
  std::vector<std::remove_const_t<T>> download(std::span<T> s) const {
    std::vector<std::remove_const_t<T>> v(s.size());
    detail::copy_to(exec, v.data(), s.data(), s.size() * sizeof(T));
    return v;
  }
};

template <class W, class M>
void check_device_algorithm1(const W& q_w, const M& q_m, aggregation rule = aggregation::mean) {
  const model_layout layout = test::odd_layout();
  test::algorithm1_setup setup;
  setup.rule = rule;
  test::cpu_fixture host;
  cuda_fixture dev;
  const test::algorithm1_record want = test::run_algorithm1(host, q_w, q_m, layout, setup);
  const test::algorithm1_record got = test::run_algorithm1(dev, q_w, q_m, layout, setup);
  for (std::size_t i = 0; i < want.worker_messages.size(); ++i) {
    CAPTURE(i);
    REQUIRE(got.worker_messages[i] == want.worker_messages[i]);
  }
  for (std::size_t step = 0; step < want.broadcasts.size(); ++step) {
    CAPTURE(step);
    REQUIRE(got.broadcasts[step] == want.broadcasts[step]);
    REQUIRE(test::bit_differences(got.updates[step], want.updates[step]) == 0);
  }
  for (std::size_t r = 0; r < want.worker_residuals.size(); ++r) {
    CAPTURE(r);
    REQUIRE(test::bit_differences(got.worker_residuals[r], want.worker_residuals[r]) == 0);
  }
  REQUIRE(test::bit_differences(got.master_residual, want.master_residual) == 0);
}

/// The in-process cluster on device buffers against the CPU cluster: the same updates bit for
/// bit and the same statistics (computed on the host from copies of identical data).
template <class W, class M>
void check_device_cluster(const W& q_w, const M& q_m, bool share_scales = false) {
  const model_layout layout = test::odd_layout();
  test::algorithm1_setup setup;
  setup.share_scales = share_scales;
  test::cpu_fixture host;
  cuda_fixture dev;
  const test::cluster_record want = test::run_cluster(host, q_w, q_m, layout, setup);
  const test::cluster_record got = test::run_cluster(dev, q_w, q_m, layout, setup);
  for (std::size_t step = 0; step < want.updates.size(); ++step) {
    CAPTURE(step);
    REQUIRE(test::bit_differences(got.updates[step], want.updates[step]) == 0);
    const step_stats& a = got.stats[step];
    const step_stats& b = want.stats[step];
    REQUIRE(a.bytes_up == b.bytes_up);
    REQUIRE(a.bytes_down == b.bytes_down);
    for (const auto& [x, y] : {std::pair{&a.up, &b.up}, std::pair{&a.down, &b.down}}) {
      REQUIRE(x->size() == y->size());
      for (std::size_t s = 0; s < x->size(); ++s) {
        CAPTURE(s);
        REQUIRE((*x)[s].payload_bytes == (*y)[s].payload_bytes);
        REQUIRE((*x)[s].error == (*y)[s].error);
      }
    }
  }
}

/// DGC momentum correction on device buffers against the CPU's: the same messages, sent masks,
/// momenta and accumulations bit for bit (local clipping on, so the norms must agree too).
template <class S>
void check_device_dgc(const S& q, typename dgc_momentum<S>::options opt) {
  const model_layout layout = test::odd_layout();
  const std::size_t n = layout.total_size();
  cuda_fixture dev;
  dgc_momentum<S> host(q, layout, opt);
  dgc_momentum<S, cuda_tag> device(q, layout, {opt.momentum, opt.clip_norm, opt.mask_momentum});
  std::vector<std::byte> want(host.max_encoded_bytes());
  auto got = dev.buffer<std::byte>(device.max_encoded_bytes());
  for (std::uint64_t step = 0; step < 4; ++step) {
    CAPTURE(step);
    const std::vector<float> g = test::algorithm1_gradient(n, 500 + step);
    const auto dg = dev.upload(g);
    const stream_key key{7, step, 0, role::worker};
    const std::size_t a =
        host.encode(cpu, std::span<const float>(g), std::span<std::byte>(want), key);
    const std::size_t b = device.encode(dev.exec, std::span<const float>(dg.data(), n),
                                        std::span<std::byte>(got.data(), got.size()), key);
    REQUIRE(b == a);
    REQUIRE(dev.download(std::span<const std::byte>(got.data(), b)) ==
            std::vector<std::byte>(want.begin(), want.begin() + static_cast<std::ptrdiff_t>(a)));
    REQUIRE(dev.download(device.last_sent_mask()) ==
            std::vector<std::uint8_t>(host.last_sent_mask().begin(), host.last_sent_mask().end()));
    REQUIRE(test::bit_differences(
                dev.download(device.momentum()),
                std::vector<float>(host.momentum().begin(), host.momentum().end())) == 0);
    REQUIRE(test::bit_differences(
                dev.download(device.accumulation()),
                std::vector<float>(host.accumulation().begin(), host.accumulation().end())) == 0);
  }
}

} // namespace

TEST_CASE("DGC momentum correction on device buffers equals the CPU's bit for bit", "[memory]") {
  SECTION("top-k layer-wise, clipped, masked") {
    check_device_dgc(scheme<topk, layer_span>{{0.1}}, {0.9f, 4.0f, true});
  }
  SECTION("random-k entire-model, unmasked") {
    check_device_dgc(scheme<random_k, flat_span>{{0.2}}, {0.5f, 0.0f, false});
  }
}

TEST_CASE("the in-process cluster on device buffers equals the CPU cluster", "[framework]") {
  SECTION("top-k layer-wise up, QSGD down") {
    check_device_cluster(scheme<topk, layer_span>{{0.1}}, scheme<qsgd, layer_span>{{15}});
  }
  SECTION("TernGrad entire-model up, identity down") {
    check_device_cluster(scheme<terngrad, flat_span>{}, scheme<identity, flat_span>{});
  }
}

TEST_CASE("scale sharing on device buffers equals the CPU's", "[framework]") {
  SECTION("TernGrad layer-wise up, QSGD down") {
    check_device_cluster(scheme<terngrad, layer_span>{}, scheme<qsgd, layer_span>{{15}}, true);
  }
  SECTION("top-k + TernGrad composite up, identity down") {
    check_device_cluster(scheme<compose<topk, terngrad>, flat_span>{{{0.25}, {}}},
                         scheme<identity, flat_span>{}, true);
  }
  SECTION("top-k up (no scales to share)") {
    check_device_cluster(scheme<topk, layer_span>{{0.1}}, scheme<identity, layer_span>{}, true);
  }
}

/// The device codec's local_scales and shared-scale encode against the CPU's, and their errors.
template <class S>
void check_device_shared_scales(const S& q) {
  const model_layout layout = test::odd_layout();
  const std::vector<float> g = test::algorithm1_gradient(layout.total_size(), 77);
  cuda_fixture dev;
  const auto dg = dev.upload(g);
  const std::span<const float> dgrad(dg.data(), g.size());
  codec<S> host(q, layout);
  codec<S> device(q, layout);
  const stream_key key{3, 4, 0, role::worker};
  std::vector<float> scales = host.local_scales(cpu, std::span<const float>(g), key);
  REQUIRE(device.local_scales(dev.exec, dgrad, key) == scales);
  for (float& v : scales) {
    v *= 2.0f; // a larger shared scale, as the max over workers gives
  }
  std::vector<std::byte> want(host.max_encoded_bytes());
  want.resize(host.encode(cpu, std::span<const float>(g), std::span<std::byte>(want), key,
                          std::span<const float>(scales)));
  auto got = dev.buffer<std::byte>(device.max_encoded_bytes());
  const std::size_t b = device.encode(dev.exec, dgrad, std::span<std::byte>(got.data(), got.size()),
                                      key, std::span<const float>(scales));
  REQUIRE(dev.download(std::span<const std::byte>(got.data(), b)) == want);
  // the CPU's errors: a wrong count, a bad scale
  std::vector<float> wrong = scales;
  wrong.push_back(1.0f);
  for (int bad = 0; bad < 2; ++bad) {
    if (bad == 1) {
      if (scales.empty()) {
        break;
      }
      wrong = scales;
      wrong.back() = -1.0f;
    }
    std::string cpu_text, gpu_text;
    try {
      (void)host.encode(cpu, std::span<const float>(g), std::span<std::byte>(want), key,
                        std::span<const float>(wrong));
    } catch (const gradcomp::error& e) {
      REQUIRE(e.code() == errc::invalid_parameter);
      cpu_text = e.what();
    }
    try {
      (void)device.encode(dev.exec, dgrad, std::span<std::byte>(got.data(), got.size()), key,
                          std::span<const float>(wrong));
    } catch (const gradcomp::error& e) {
      REQUIRE(e.code() == errc::invalid_parameter);
      gpu_text = e.what();
    }
    REQUIRE(!cpu_text.empty());
    REQUIRE(gpu_text == cpu_text);
  }
}

TEST_CASE("local_scales and shared-scale encode on the device equal the CPU's", "[codec]") {
  check_device_shared_scales(scheme<terngrad, layer_span>{});
  check_device_shared_scales(scheme<qsgd, bucket_span>{{15}, {512}});
  check_device_shared_scales(scheme<compose<random_k, qsgd>, layer_span>{{{0.3}, {7}}});
  check_device_shared_scales(scheme<threshold_v, flat_span>{{0.5}});
}

TEST_CASE("Algorithm 1 on device buffers equals the CPU run bit for bit", "[framework]") {
  SECTION("top-k layer-wise up, QSGD down") {
    check_device_algorithm1(scheme<topk, layer_span>{{0.1}}, scheme<qsgd, layer_span>{{15}});
  }
  SECTION("TernGrad entire-model up, identity down") {
    check_device_algorithm1(scheme<terngrad, flat_span>{}, scheme<identity, flat_span>{});
  }
  SECTION("top-k + QSGD composition up, random-k down") {
    check_device_algorithm1(scheme<compose<topk, qsgd>, layer_span>{{{0.2}, {7}}},
                            scheme<random_k, flat_span>{{0.3}});
  }
  SECTION("signSGD with majority vote") {
    check_device_algorithm1(scheme<sign_sgd, layer_span>{}, scheme<sign_sgd, layer_span>{},
                            aggregation::majority_vote);
  }
}

TEST_CASE("a device worker rejects a broadcast for another step by name", "[framework]") {
  using W = scheme<topk, layer_span>;
  using M = scheme<identity, layer_span>;
  const model_layout layout = test::odd_layout();
  cuda_fixture dev;
  master<W, M, cuda_tag> m({{0.1}}, {}, layout, 1, {5});
  worker<W, M, cuda_tag> w({{0.1}}, {}, layout, 0, {5});
  const auto grad = dev.upload(test::algorithm1_gradient(layout.total_size(), 1));
  m.begin(0);
  m.receive(dev.exec, w.compress(dev.exec, std::span<const float>(grad.data(), grad.size()), 0));
  const auto bc = m.broadcast(dev.exec);
  auto update = dev.buffer<float>(layout.total_size());
  try {
    w.decompress(dev.exec, bc, 1, std::span<float>(update.data(), update.size()));
    FAIL("a broadcast for step 0 was accepted at step 1");
  } catch (const gradcomp::error& e) {
    REQUIRE(e.code() == errc::wrong_step);
  }
}

GRADCOMP_CUDA_TEST_MAIN("test_device_framework")
