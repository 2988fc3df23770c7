// SPDX-License-Identifier: Apache-2.0
// The NCCL transport on one GPU (a one-rank communicator is what one GPU can run): envelopes
// round-trip and are checked, a real Q_W message crosses allgatherv and broadcast on the device
// byte for byte and decodes to the CPU codec's values, the max-allreduce is exact, and a buffer
// too small for the announced messages is a named error before anything is sent.
#include "device_test_support.cuh"

#include <gradcomp/backend/cuda/nccl.cuh>

using namespace gradcomp;

TEST_CASE("NCCL: envelopes, messages and scales round-trip on one rank", "[cuda][nccl]") {
  cudaStream_t stream = nullptr;
  REQUIRE(cudaStreamCreate(&stream) == cudaSuccess);
  {
    auto comm = nccl_communicator::single_gpu(stream, {std::chrono::seconds(30)});
    REQUIRE(comm.size() == 1);
    REQUIRE(comm.rank() == 0);

    const model_layout layout = model_layout::from_sizes({37, 0, 1000, 5});
    exchange_envelope mine;
    mine.layout_digest = layout_digest(layout);
    mine.step = 7;
    mine.payload_bytes = 123;
    const auto envs = comm.exchange_envelopes(mine);
    REQUIRE(envs.size() == 1);
    CHECK(envs[0].step == 7);
    CHECK(envs[0].payload_bytes == 123);

    // a real message: top-k layer-wise, encoded on the host
    codec<scheme<topk, layer_span>> c(scheme<topk, layer_span>{{0.05}}, layout);
    std::vector<float> g(layout.total_size());
    for (std::size_t i = 0; i < g.size(); ++i) {
      g[i] = std::sin(0.37f * static_cast<float>(i));
    }
    std::vector<std::byte> msg(c.max_encoded_bytes());
    msg.resize(c.encode(cpu, std::span<const float>(g), std::span<std::byte>(msg), {3, 7, 0}));
    detail::device_array<std::byte> dmsg(msg.size()), dout(msg.size() + 64);
    REQUIRE(cudaMemcpy(dmsg.data(), msg.data(), msg.size(), cudaMemcpyHostToDevice) == cudaSuccess);
    const std::vector<std::size_t> sizes{msg.size()};
    const auto offsets = comm.allgatherv(dmsg.data(), sizes, dout.data(), dout.size());
    REQUIRE(offsets == std::vector<std::size_t>{0, msg.size()});
    comm.broadcast(dout.data(), msg.size(), 0);
    std::vector<std::byte> back(msg.size());
    REQUIRE(cudaMemcpy(back.data(), dout.data(), back.size(), cudaMemcpyDeviceToHost) ==
            cudaSuccess);
    CHECK(back == msg);
    std::vector<float> want(g.size()), got(g.size());
    c.decode(cpu, std::span<const std::byte>(msg), std::span<float>(want));
    c.decode(cpu, std::span<const std::byte>(back), std::span<float>(got));
    CHECK(got == want);

    // max-allreduce of scales
    std::vector<float> scales{0.5f, 3.25f, 1e-30f};
    detail::device_array<float> ds(scales.size());
    REQUIRE(cudaMemcpy(ds.data(), scales.data(), 12, cudaMemcpyHostToDevice) == cudaSuccess);
    comm.allreduce_max(ds.data(), scales.size());
    std::vector<float> sback(3);
    REQUIRE(cudaMemcpy(sback.data(), ds.data(), 12, cudaMemcpyDeviceToHost) == cudaSuccess);
    CHECK(sback == scales);

    // the receive buffer must hold what the envelopes announced
    try {
      (void)comm.allgatherv(dmsg.data(), std::vector<std::size_t>{dout.size() + 1}, dout.data(),
                            dout.size());
      FAIL("accepted");
    } catch (const error& e) {
      CHECK(e.code() == errc::buffer_too_small);
    }
  }
  cudaStreamDestroy(stream);
}

GRADCOMP_CUDA_TEST_MAIN("test_nccl_comm")
