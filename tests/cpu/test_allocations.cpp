// SPDX-License-Identifier: Apache-2.0
// A warm codec allocates no buffer that grows with the gradient (codec.hpp: the workspace is
// reused between calls), on one thread and on several: every allocation of a warm call is small
// (span names, frame bookkeeping). Watched by replacing the global operator new.

#include "../support/generators.hpp"

#include <gradcomp/gradcomp.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<bool> counting{false};
std::atomic<std::size_t> largest{0}; ///< the largest allocation while counting

void* counted_alloc(std::size_t n) {
  if (counting.load(std::memory_order_relaxed)) {
    std::size_t l = largest.load();
    while (n > l && !largest.compare_exchange_weak(l, n)) {
    }
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) {
    return p;
  }
  throw std::bad_alloc();
}
} // namespace

void* operator new(std::size_t n) {
  return counted_alloc(n);
}
void* operator new[](std::size_t n) {
  return counted_alloc(n);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}

using namespace gradcomp;

namespace {

/// The largest allocation during f() (0: none).
template <class F>
std::size_t largest_allocation_in(F&& f) {
  largest = 0;
  counting = true;
  f();
  counting = false;
  return largest.load();
}
/// Larger than any allocation a warm call may make; far below any gradient-sized buffer.
constexpr std::size_t small_allocation = 4096;

/// Two calls warm the codec (a selection's size differs from call to call, so the second call
/// may still grow a buffer); the third encode and decode must make small allocations only. (Two
/// selection buffers swapped in turn would each grow in its own call: caught here.)
template <class S>
void check_warm_calls(S s, const model_layout& l, const cpu_policy& exec) {
  codec c(s, l);
  const auto x = test::make_input(l.total_size(), test::distribution::normal, 3);
  std::vector<std::byte> msg(c.template max_encoded_bytes<float>());
  std::vector<float> out(x.size());
  std::size_t bytes = 0;
  auto encode = [&](std::uint64_t step) {
    bytes = c.encode(exec, std::span<const float>(x), std::span<std::byte>(msg), {1, step});
  };
  auto decode = [&] {
    c.decode(exec, std::span<const std::byte>(msg.data(), bytes), std::span<float>(out));
  };
  for (std::uint64_t step = 0; step < 2; ++step) {
    encode(step);
    decode();
  }
  CAPTURE(exec.threads);
  CHECK(largest_allocation_in([&] { encode(2); }) < small_allocation);
  CHECK(largest_allocation_in(decode) < small_allocation);
}

} // namespace

TEST_CASE("a warm codec allocates no gradient-sized buffer", "[alloc]") {
  const model_layout l = model_layout::from_sizes({70000, 5, 300001, 4096});
  const model_layout flat = model_layout::from_sizes({l.total_size()});
  for (const cpu_policy& exec : {cpu, cpu_threads(2)}) {
    check_warm_calls(scheme<topk, flat_span>{{0.01}}, flat, exec);
    check_warm_calls(scheme<topk, layer_span>{{0.1}}, l, exec);
    check_warm_calls(scheme<threshold_v, flat_span>{{1e-4}}, flat, exec); // most elements kept
    check_warm_calls(scheme<adaptive_threshold, flat_span>{}, flat, exec);
    check_warm_calls(scheme<random_k, layer_span>{{0.01}}, l, exec);
    check_warm_calls(scheme<qsgd, flat_span>{{15}}, flat, exec);
    check_warm_calls(scheme<identity, layer_span>{}, l, exec);
    check_warm_calls(scheme<compose<topk, qsgd>, flat_span>{{{0.01}, {15}}}, flat, exec);
  }
}
