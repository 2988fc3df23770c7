// SPDX-License-Identifier: Apache-2.0
// Kernel throughput of every registered scheme: compress+encode and validate+decode of each spec
// of the registry's examples (runtime::example_specs(), through any_codec) and of the sparsifiers'
// ratio sweep, entire-model (flat), layer-wise (layer) and bucketed (bucket, 1M) on the ResNet-50,
// ResNet-9 and AlexNet layer tables and on flat buffers of 2^16 .. 2^26 floats, single thread, and
// on ResNet-50 again with two threads (cpu_threads(2)). Names:
// <spec>/<cpu|cpu_t2>/<layout>/<phase>, the spec with its granularity and phase encode or decode,
// e.g. topk:0.01/layer/coo-f32/cpu/resnet50/encode; PowerSGD:
// powersgd:<r>/<layer|flat>/<cpu|cpu_t2>/<layout>/step. Each benchmark reports input GB/s,
// bits/element, payload bytes, and its rate as a fraction of memcpy's input rate on a buffer of the
// same size measured in the same process (vs_memcpy), so machine noise cancels. Baselines in the
// same binary: memcpy, a plain vectorized read (sum), top-k by std::nth_element and by
// std::partial_sort over magnitudes, and the tests' plain reference top-k (a full sort).
// scripts/bench.sh runs a subset and renders the table and plot.

#include "../tests/support/reference.hpp"
#include "../tests/support/specs.hpp"

#include <gradcomp/backend/cpu/parallel.hpp>
#include <gradcomp/gradcomp.hpp>
#include <gradcomp/runtime/any_codec.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using namespace gradcomp;

namespace {

/// The benchmark gradient of n floats (normal, sigma 1e-3), generated once per size.
const std::vector<float>& gradient(std::size_t n) {
  static std::map<std::size_t, std::vector<float>> cache;
  auto [it, fresh] = cache.try_emplace(n);
  if (fresh) {
    it->second.resize(n);
    std::mt19937_64 rng(42);
    std::normal_distribution<float> nd(0.0f, 1e-3f);
    for (auto& v : it->second)
      v = nd(rng);
  }
  return it->second;
}

/// memcpy input rate (bytes/s) on n floats, best of 5 runs, measured once per size.
double memcpy_rate(std::size_t n) {
  static std::map<std::size_t, double> cache;
  if (auto it = cache.find(n); it != cache.end())
    return it->second;
  const std::vector<float>& a = gradient(n);
  std::vector<float> b(n);
  double best = 1e30;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    std::memcpy(b.data(), a.data(), n * 4);
    benchmark::DoNotOptimize(b.data());
    benchmark::ClobberMemory();
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return cache[n] = static_cast<double>(n) * 4 / best;
}

void report(benchmark::State& st, std::size_t n, std::size_t payload) {
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations()) * static_cast<std::int64_t>(n) *
                       4);
  st.counters["bits_per_elem"] = static_cast<double>(payload) * 8 / static_cast<double>(n);
  st.counters["payload_bytes"] = static_cast<double>(payload);
  // rate relative to memcpy's input rate on the same size (>1: faster than memcpy)
  st.counters["vs_memcpy"] = benchmark::Counter(static_cast<double>(n) * 4 / memcpy_rate(n),
                                                benchmark::Counter::kIsIterationInvariantRate);
}

/// The backend field of a benchmark name: "cpu" (one thread) or "cpu_t<N>".
std::string backend_name(const cpu_policy& exec) {
  return exec.threads == 1 ? "cpu" : "cpu_t" + std::to_string(exec.threads);
}

/// The benchmarked specs (granularity "/flat/"): every example of the scheme registry
/// (runtime::example_specs()) and the sparsifiers' ratio sweep on this gradient (normal, sigma
/// 1e-3): top-k and random-k at 0.1%, 1% and 10%, threshold-v at two sigma (about 4.6% kept).
std::vector<std::string> bench_specs() {
  std::vector<std::string> out = runtime::example_specs();
  for (const char* s : {"topk:0.1/flat/coo-f32", "random_k:0.001/flat/coo-f32",
                        "random_k:0.1/flat/coo-f32", "threshold_v:2e-3/flat/coo-f32"}) {
    if (std::find(out.begin(), out.end(), s) == out.end()) {
      out.emplace_back(s);
    }
  }
  return out;
}

void register_spec(const std::string& spec, const std::string& layout_name,
                   const model_layout& layout, cpu_policy exec) {
  std::string name = spec; // append, not operator+: g++ 12 -Wrestrict
  name.append("/").append(backend_name(exec)).append("/").append(layout_name);
  benchmark::RegisterBenchmark(
      (name + "/encode").c_str(),
      [spec, layout, exec](benchmark::State& st) {
        any_codec c(spec, layout);
        const auto& x = gradient(layout.total_size());
        std::vector<std::byte> msg(c.max_encoded_bytes<float>());
        // one call before timing: the codec's buffers reach size
        std::size_t bytes =
            c.encode(exec, std::span<const float>(x), std::span<std::byte>(msg), stream_key{1, 0});
        std::uint64_t step = 1;
        for (auto _ : st) {
          bytes = c.encode(exec, std::span<const float>(x), std::span<std::byte>(msg),
                           stream_key{1, step++});
          benchmark::DoNotOptimize(msg.data());
        }
        report(st, x.size(), bytes);
      })
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark((name + "/decode").c_str(),
                               [spec, layout, exec](benchmark::State& st) {
                                 any_codec c(spec, layout);
                                 const auto& x = gradient(layout.total_size());
                                 std::vector<std::byte> msg(c.max_encoded_bytes<float>());
                                 msg.resize(c.encode(cpu, std::span<const float>(x),
                                                     std::span<std::byte>(msg), stream_key{1, 0}));
                                 std::vector<float> out(x.size());
                                 for (auto _ : st) {
                                   c.decode(exec, std::span<const std::byte>(msg),
                                            std::span<float>(out));
                                   benchmark::DoNotOptimize(out.data());
                                 }
                                 report(st, x.size(), msg.size());
                               })
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

/// Level sums (framework/level_sums.hpp) of a spec whose codes add, for `ranks` contributors:
/// one message's levels added into the words (what each rank does before the all-reduce), and the
/// summed words turned into the aggregate's values (after it). Rates are per gradient element.
void register_level_sums(const std::string& spec, const std::string& layout_name,
                         const model_layout& layout, std::size_t ranks) {
  const std::string name = "levels/" + spec + "/" + layout_name + "/ranks:" + std::to_string(ranks);
  struct fixture {
    level_sums sums;
    std::vector<std::byte> msg;
    std::vector<std::uint64_t> words;
    std::vector<float> scales;
  };
  auto make = [spec, layout, ranks] {
    any_codec c(spec, layout);
    const auto& x = gradient(layout.total_size());
    fixture f{
        level_sums(c.level_spans(), ranks), std::vector<std::byte>(c.max_encoded_bytes()), {}, {}};
    f.msg.resize(c.encode(cpu, std::span<const float>(x), std::span<std::byte>(f.msg), {1, 0}));
    f.words.assign(f.sums.words(), 0);
    f.sums.add(f.msg, f.words, f.scales);
    return f;
  };
  benchmark::RegisterBenchmark((name + "/add").c_str(),
                               [make, layout](benchmark::State& st) {
                                 fixture f = make();
                                 for (auto _ : st) {
                                   f.sums.add(f.msg, f.words, f.scales);
                                   benchmark::DoNotOptimize(f.words.data());
                                 }
                                 report(st, layout.total_size(), 8 * f.words.size());
                               })
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark((name + "/values").c_str(),
                               [make, layout](benchmark::State& st) {
                                 fixture f = make();
                                 std::vector<float> out(layout.total_size());
                                 for (auto _ : st) {
                                   f.sums.values(f.words, f.scales, std::span<float>(out));
                                   benchmark::DoNotOptimize(out.data());
                                 }
                                 report(st, layout.total_size(), 8 * f.words.size());
                               })
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

/// PowerSGD (lowrank/powersgd.hpp) at rank r, layer-wise or entire-model: one worker's whole step
/// (P = M Q, the sum of its one P message, orthonormalization and Q = M^T P, the sum of its Q
/// message, reconstruction and residual), with error feedback. bits_per_elem counts both messages
/// a worker sends per step.
void register_powersgd(const std::string& layout_name, const model_layout& layout, std::size_t r,
                       bool entire_model, cpu_policy exec = cpu) {
  std::string name = "powersgd:" + std::to_string(r);
  name.append(entire_model ? "/flat/" : "/layer/").append(backend_name(exec));
  name.append("/").append(layout_name).append("/step");
  benchmark::RegisterBenchmark(name.c_str(),
                               [layout, r, entire_model, exec](benchmark::State& st) {
                                 powersgd w(layout,
                                            {.rank = r, .entire_model = entire_model, .seed = 1});
                                 const auto& x = gradient(layout.total_size());
                                 std::vector<float> out(x.size());
                                 std::vector<std::byte> msg;
                                 std::vector<std::byte> sum;
                                 std::size_t sent = 0;
                                 for (auto _ : st) {
                                   w.encode_p(exec, x, msg);
                                   sent = msg.size();
                                   w.sum(lowrank_round::p,
                                         std::span<const std::span<const std::byte>>(
                                             std::array{std::span<const std::byte>(msg)}),
                                         sum);
                                   w.encode_q(exec, sum, msg);
                                   sent += msg.size();
                                   w.sum(lowrank_round::q,
                                         std::span<const std::span<const std::byte>>(
                                             std::array{std::span<const std::byte>(msg)}),
                                         sum);
                                   w.decode(exec, sum, out);
                                   benchmark::DoNotOptimize(out.data());
                                 }
                                 report(st, x.size(), sent);
                               })
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

/// Every benchmarked spec over `layout` with granularity `g` (flat, layer or bucket).
void register_all(const std::string& layout_name, const model_layout& layout, std::string_view g,
                  cpu_policy exec = cpu) {
  for (const std::string& spec : bench_specs()) {
    register_spec(test::with_granularity(spec, g), layout_name, layout, exec);
  }
}

void baselines(std::size_t n) {
  const std::string sz = std::to_string(n);
  benchmark::RegisterBenchmark(("baseline/memcpy/" + sz).c_str(),
                               [n](benchmark::State& st) {
                                 const auto& a = gradient(n);
                                 std::vector<float> b(n);
                                 for (auto _ : st) {
                                   std::memcpy(b.data(), a.data(), n * 4);
                                   benchmark::DoNotOptimize(b.data());
                                   benchmark::ClobberMemory();
                                 }
                                 report(st, n, n * 4);
                               })
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  // memcpy with each of two threads copying one half: the memory limit the 2-thread policy meets
  benchmark::RegisterBenchmark(("baseline/memcpy_t2/" + sz).c_str(),
                               [n](benchmark::State& st) {
                                 const auto& a = gradient(n);
                                 std::vector<float> b(n);
                                 for (auto _ : st) {
                                   detail::parallel_parts(
                                       cpu_threads(2), n, 1,
                                       [&](std::size_t lo, std::size_t hi, std::size_t) {
                                         std::memcpy(b.data() + lo, a.data() + lo, (hi - lo) * 4);
                                       });
                                   benchmark::DoNotOptimize(b.data());
                                   benchmark::ClobberMemory();
                                 }
                                 report(st, n, n * 4);
                               })
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark(("baseline/sum/" + sz).c_str(),
                               [n](benchmark::State& st) {
                                 const auto& a = gradient(n);
                                 for (auto _ : st) {
                                   float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0,
                                         s7 = 0;
                                   for (std::size_t i = 0; i + 8 <= n; i += 8) {
                                     s0 += a[i];
                                     s1 += a[i + 1];
                                     s2 += a[i + 2];
                                     s3 += a[i + 3];
                                     s4 += a[i + 4];
                                     s5 += a[i + 5];
                                     s6 += a[i + 6];
                                     s7 += a[i + 7];
                                   }
                                   benchmark::DoNotOptimize(s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7);
                                 }
                                 report(st, n, 0);
                               })
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  // top-k of the magnitudes by the standard library and by the tests' reference (a full sort)
  const auto topk_baseline = [n, &sz](const std::string& method, double r, auto select) {
    benchmark::RegisterBenchmark(
        ("baseline/" + method + "_topk_" + std::to_string(int(r * 100)) + "pct/" + sz).c_str(),
        [n, r, select](benchmark::State& st) {
          const auto& a = gradient(n);
          std::vector<float> mag(n);
          const auto k = static_cast<std::ptrdiff_t>(topk{r}.count(n));
          for (auto _ : st) {
            for (std::size_t i = 0; i < n; ++i)
              mag[i] = std::fabs(a[i]);
            select(mag, k);
            benchmark::DoNotOptimize(mag.data());
          }
          report(st, n, 0);
        })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  };
  for (double r : {0.01, 0.1}) {
    topk_baseline("nth_element", r, [](std::vector<float>& m, std::ptrdiff_t k) {
      std::nth_element(m.begin(), m.begin() + (k - 1), m.end(), std::greater<>());
    });
    topk_baseline("partial_sort", r, [](std::vector<float>& m, std::ptrdiff_t k) {
      std::partial_sort(m.begin(), m.begin() + k, m.end(), std::greater<>());
    });
  }
  benchmark::RegisterBenchmark(("baseline/reference_topk_1pct/" + sz).c_str(),
                               [n](benchmark::State& st) {
                                 const auto& a = gradient(n);
                                 const std::size_t k = topk{0.01}.count(n);
                                 for (auto _ : st) {
                                   auto kept = test::ref::topk(a, k);
                                   benchmark::DoNotOptimize(kept.data());
                                 }
                                 report(st, n, 0);
                               })
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

} // namespace

int main(int argc, char** argv) {
  const std::pair<std::string, model_layout> tables[] = {{"resnet50", models::resnet50_imagenet()},
                                                         {"resnet9", models::resnet9_cifar10()},
                                                         {"alexnet", models::alexnet_cifar10()}};
  for (const auto& [name, layout] : tables) {
    baselines(layout.total_size());
    for (const char* g : {"flat", "layer", "bucket"}) {
      register_all(name, layout, g);
    }
    if (name == "resnet50") { // the multi-threaded policy, on the 2-core machine's two threads
      register_all(name, layout, "flat", cpu_threads(2));
      register_all(name, layout, "layer", cpu_threads(2));
      for (const char* spec : {"terngrad/layer", "qsgd:15/layer", "sign/layer"}) {
        register_level_sums(spec, name, layout, 8);
      }
    }
    if (name != "alexnet") {
      for (const std::size_t r : {1, 2, 4}) {
        register_powersgd(name, layout, r, false);
        register_powersgd(name, layout, r, true);
        if (name == "resnet50") {
          register_powersgd(name, layout, r, false, cpu_threads(2));
          register_powersgd(name, layout, r, true, cpu_threads(2));
        }
      }
    }
  }
  for (unsigned log2 = 16; log2 <= 26; log2 += 2) {
    const std::size_t n = std::size_t{1} << log2;
    const std::string name = "flat2^" + std::to_string(log2);
    baselines(n);
    register_all(name, model_layout::from_sizes({n}), "flat");
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
