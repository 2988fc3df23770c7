// SPDX-License-Identifier: Apache-2.0
// The thread-count check shared by the typed and the registry suites: a codec's messages under
// cpu_threads(2), (3) and all hardware threads are byte for byte the single-threaded ones, and
// decode and decode_add bit for bit equal.
#pragma once

#include "generators.hpp"

#include <gradcomp/gradcomp.hpp>

#include <catch2/catch.hpp>

#include <cstring>
#include <span>
#include <vector>

namespace gradcomp::test {

/// A big layer, a zero-length one, a small one (which stays on the calling thread) and a
/// mid-size one with an odd size: every pass over the big ones splits (parts of >= 2^15).
inline model_layout threads_layout() {
  return model_layout::from_sizes({600000, 0, 37, 300001}, {"big", "empty", "small", "odd"});
}

/// `make()` returns a fresh codec (codec<Scheme> or any_codec) over threads_layout().
template <class T, class MakeCodec>
void check_thread_invariance(const MakeCodec& make, distribution d, std::uint64_t seed) {
  auto one = make();
  const std::vector<T> x = convert<T>(make_input(one.layout().total_size(), d, seed));
  const stream_key key{seed, 3, 1};
  std::vector<std::byte> want(one.template max_encoded_bytes<T>());
  want.resize(one.encode(cpu, std::span<const T>(x), std::span<std::byte>(want), key));
  std::vector<T> want_out(x.size());
  one.decode(cpu, std::span<const std::byte>(want), std::span<T>(want_out));
  std::vector<T> twice = want_out;
  one.decode_add(cpu, std::span<const std::byte>(want), std::span<T>(twice));
  for (const cpu_policy& exec : {cpu_threads(2), cpu_threads(3), cpu_threads(0)}) {
    CAPTURE(exec.threads);
    auto many = make();
    std::vector<std::byte> got(many.template max_encoded_bytes<T>());
    got.resize(many.encode(exec, std::span<const T>(x), std::span<std::byte>(got), key));
    REQUIRE(got == want);
    std::vector<T> out(x.size());
    many.decode(exec, std::span<const std::byte>(got), std::span<T>(out));
    REQUIRE(std::memcmp(out.data(), want_out.data(), out.size() * sizeof(T)) == 0);
    many.decode_add(exec, std::span<const std::byte>(got), std::span<T>(out));
    REQUIRE(std::memcmp(out.data(), twice.data(), out.size() * sizeof(T)) == 0);
  }
}

} // namespace gradcomp::test
