// SPDX-License-Identifier: Apache-2.0
// Throughput of the CUDA backend, each figure a ratio to a device-to-device copy of the same
// buffer timed in the same run. A standalone program (CUDA events around whole API calls, the
// median of repetitions) so that it runs on GPU machines without Google Benchmark; it writes one
// JSON object per line (operator, layout, granularity, elements, milliseconds, input GB/s, ratio
// to the copy's input rate, launches per call) and a summary table.
//
//   bench_device [--quick] [--json FILE]
#include <gradcomp/cuda.cuh>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <cub/device/device_radix_sort.cuh>
#include <functional>
#include <random>
#include <string>
#include <vector>

using namespace gradcomp;

namespace {

struct result {
  std::string op, layout, granularity, direction;
  std::size_t n = 0;
  double ms = 0, gbps = 0, ratio = 0;
  std::size_t launches = 0, bytes = 0;
};

/// Median milliseconds of `reps` calls of f, timed with CUDA events on the default stream.
double time_ms(const std::function<void()>& f, int reps) {
  f(); // warm-up
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    cudaEventRecord(a);
    f();
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    t.push_back(ms);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::vector<float> normal_input(std::size_t n, std::uint64_t seed) {
  std::vector<float> x(n);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 1e-3f);
  for (float& v : x)
    v = d(rng);
  return x;
}

struct bench_context {
  const float* grad = nullptr;
  std::size_t n = 0;
  double copy_ms = 0;
  int reps = 20;
  std::vector<result>* out = nullptr;
};

template <class S>
void bench_scheme(const bench_context& ctx, const std::string& op, const std::string& layout_name,
                  const model_layout& layout, const S& s) {
  codec<S> dev(s, layout);
  detail::device_array<std::byte> msg(dev.max_encoded_bytes());
  detail::device_array<float> out(ctx.n);
  const cuda_policy gpu{};
  std::size_t bytes = 0;
  const stream_key key{1, 1, 0, role::worker};
  const double enc = time_ms(
      [&] {
        bytes = dev.encode(gpu, std::span<const float>(ctx.grad, ctx.n),
                           std::span<std::byte>(msg.data(), msg.size()), key);
      },
      ctx.reps);
  const std::size_t enc_launches = cuda_stats(dev).last_launch_count;
  const double dec = time_ms(
      [&] {
        dev.decode(gpu, std::span<const std::byte>(msg.data(), bytes),
                   std::span<float>(out.data(), ctx.n));
      },
      ctx.reps);
  const double in_bytes = 4.0 * static_cast<double>(ctx.n);
  const std::string g(S::granularity_type::name);
  ctx.out->push_back({op, layout_name, g, "encode", ctx.n, enc, in_bytes / enc / 1e6,
                      ctx.copy_ms / enc, enc_launches, bytes});
  ctx.out->push_back({op, layout_name, g, "decode", ctx.n, dec, in_bytes / dec / 1e6,
                      ctx.copy_ms / dec, cuda_stats(dev).last_launch_count, bytes});
}

template <class G>
void bench_all(const bench_context& ctx, const std::string& name, const model_layout& layout) {
  bench_scheme(ctx, "identity_f32", name, layout, scheme<identity, G, dense<float>>{});
  bench_scheme(ctx, "sign", name, layout, scheme<sign_sgd, G>{});
  bench_scheme(ctx, "scaled_sign", name, layout, scheme<scaled_sign, G>{});
  bench_scheme(ctx, "terngrad", name, layout, scheme<terngrad, G>{});
  bench_scheme(ctx, "qsgd_s15", name, layout, scheme<qsgd, G>{{15}});
  bench_scheme(ctx, "qsgd_s255", name, layout, scheme<qsgd, G>{{255}});
  bench_scheme(ctx, "natural", name, layout, scheme<natural, G>{});
  bench_scheme(ctx, "sr_bf16", name, layout, scheme<stochastic_rounding<gradcomp::bfloat16>, G>{});
  bench_scheme(ctx, "topk_0.1pct", name, layout, scheme<topk, G>{{0.001}});
  bench_scheme(ctx, "topk_1pct", name, layout, scheme<topk, G>{{0.01}});
  bench_scheme(ctx, "topk_10pct", name, layout, scheme<topk, G>{{0.1}});
  bench_scheme(ctx, "randomk_1pct", name, layout, scheme<random_k, G>{{0.01}});
  bench_scheme(ctx, "randomk_1pct_shared", name, layout, scheme<random_k, G>{{0.01, false, true}});
  bench_scheme(ctx, "threshold_v", name, layout, scheme<threshold_v, G>{{2e-3}});
  bench_scheme(ctx, "adaptive_threshold", name, layout, scheme<adaptive_threshold, G>{});
  bench_scheme(ctx, "topk_1pct+terngrad", name, layout,
               scheme<compose<topk, terngrad>, G>{{{0.01}, {}}});
  bench_scheme(ctx, "topk_1pct+qsgd_s15", name, layout,
               scheme<compose<topk, qsgd>, G>{{{0.01}, {15}}});
}

/// Baseline for top-k: a full CUB radix sort of the 32-bit magnitude keys of the same buffer.
double radix_sort_ms(const float* grad, std::size_t n, int reps) {
  detail::device_array<std::uint32_t> keys_out(n);
  const auto* keys = reinterpret_cast<const std::uint32_t*>(grad);
  std::size_t temp = 0;
  cub::DeviceRadixSort::SortKeys(nullptr, temp, keys, keys_out.data(), n);
  detail::device_array<std::byte> scratch(temp);
  return time_ms(
      [&] {
        std::size_t t = temp;
        cub::DeviceRadixSort::SortKeys(scratch.data(), t, keys, keys_out.data(), n);
      },
      reps);
}

} // namespace

int main(int argc, char** argv) {
  if (!cuda_device_available()) {
    std::printf("no CUDA device: bench_device skipped\n");
    return 77;
  }
  bool quick = false;
  const char* json = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0)
      quick = true;
    else if (std::strcmp(argv[i], "--json") == 0 && i + 1 < argc)
      json = argv[++i];
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  std::printf("device: %s, %d SMs\n", prop.name, prop.multiProcessorCount);
  std::vector<result> results;
  const auto run_layout = [&](const std::string& name, const model_layout& layout, bool flat_too) {
    const std::size_t n = layout.total_size();
    const auto host = normal_input(n, 7);
    detail::device_array<float> grad(n), copy(n);
    cudaMemcpy(grad.data(), host.data(), n * 4, cudaMemcpyHostToDevice);
    bench_context ctx{grad.data(), n, 0, quick ? 5 : 20, &results};
    ctx.copy_ms =
        time_ms([&] { cudaMemcpyAsync(copy.data(), grad.data(), n * 4, cudaMemcpyDeviceToDevice); },
                ctx.reps);
    results.push_back({"memcpy_d2d", name, "-", "copy", n, ctx.copy_ms, 4.0 * n / ctx.copy_ms / 1e6,
                       1.0, 1, 4 * n});
    const double sort_ms = radix_sort_ms(grad.data(), n, ctx.reps);
    results.push_back({"cub_radix_sort_keys", name, "-", "sort", n, sort_ms,
                       4.0 * n / sort_ms / 1e6, ctx.copy_ms / sort_ms, 1, 4 * n});
    bench_all<layer_span>(ctx, name, layout);
    if (flat_too)
      bench_all<flat_span>(ctx, name, layout);
  };
  run_layout("resnet50", models::resnet50_imagenet(), true);
  run_layout("flat_2^26", model_layout::from_sizes({std::size_t{1} << 26}), false);
  if (!quick)
    run_layout("flat_2^22", model_layout::from_sizes({std::size_t{1} << 22}), false);
  std::FILE* f = json ? std::fopen(json, "w") : nullptr;
  std::printf(
      "| layout | operator | granularity | dir | n | ms | input GB/s | x copy | launches |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  for (const result& r : results) {
    std::printf("| %s | %s | %s | %s | %zu | %.4f | %.1f | %.2f | %zu |\n", r.layout.c_str(),
                r.op.c_str(), r.granularity.c_str(), r.direction.c_str(), r.n, r.ms, r.gbps,
                r.ratio, r.launches);
    if (f)
      std::fprintf(f,
                   "{\"layout\":\"%s\",\"operator\":\"%s\",\"granularity\":\"%s\",\"direction\":"
                   "\"%s\",\"n\":%zu,\"ms\":%.6f,\"input_gbps\":%.2f,\"ratio_to_copy\":%.4f,"
                   "\"launches\":%zu,\"bytes\":%zu}\n",
                   r.layout.c_str(), r.op.c_str(), r.granularity.c_str(), r.direction.c_str(), r.n,
                   r.ms, r.gbps, r.ratio, r.launches, r.bytes);
  }
  if (f)
    std::fclose(f);
  return 0;
}
