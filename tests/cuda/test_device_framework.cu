// SPDX-License-Identifier: Apache-2.0
// Algorithm 1 on device buffers: workers with Q_W and error feedback, a master with Q_M and its
// own error feedback, every buffer in device memory under cuda_policy. The body is the one the
// CPU suite checks against codec calls (support/algorithm1_cases.hpp); here the device run must
// equal the CPU run bit for bit: messages, broadcasts, updates and both sides' residuals.

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

} // namespace

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
