// SPDX-License-Identifier: Apache-2.0
// The installed CUDA component's consumer: TernGrad layer-wise encoded on the device must give the
// CPU codec's bytes. Without a device it says so and stops (the package test then skips).

#include <gradcomp/cuda.cuh>

#include <cstdio>
#include <span>
#include <vector>

int main() {
  using namespace gradcomp;
  if (!cuda_device_available()) {
    std::printf("no CUDA device: the cuda component built and linked; not run\n");
    return 0;
  }
  const model_layout layout = model_layout::from_sizes({1000, 37, 4096}, {"w1", "b1", "w2"});
  const scheme<terngrad, layer_span> s{};
  std::vector<float> grad(layout.total_size());
  for (std::size_t i = 0; i < grad.size(); ++i) {
    grad[i] = static_cast<float>(static_cast<int>(i * 7919 % 2001) - 1000) / 1000.0f;
  }
  const stream_key key{42, 1, 0};

  codec<decltype(s)> host(s, layout);
  std::vector<std::byte> want(host.max_encoded_bytes<float>());
  want.resize(host.encode(cpu, std::span<const float>(grad), std::span<std::byte>(want), key));

  codec<decltype(s)> dev(s, layout);
  detail::device_array<float> d_grad(grad.size());
  detail::device_array<std::byte> d_msg(want.size());
  detail::cuda_check(
      cudaMemcpy(d_grad.data(), grad.data(), grad.size() * sizeof(float), cudaMemcpyHostToDevice),
      "cudaMemcpy");
  const std::size_t bytes =
      dev.encode(cuda_policy{}, std::span<const float>(d_grad.data(), grad.size()),
                 std::span<std::byte>(d_msg.data(), want.size()), key);
  std::vector<std::byte> got(bytes);
  detail::cuda_check(cudaMemcpy(got.data(), d_msg.data(), bytes, cudaMemcpyDeviceToHost),
                     "cudaMemcpy");
  if (got != want) {
    std::printf("cuda consumer: the device message differs from the CPU's\n");
    return 1;
  }
  std::printf("cuda consumer: %zu bytes, equal to the CPU codec's\n", bytes);
  return 0;
}
