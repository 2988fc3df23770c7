// SPDX-License-Identifier: Apache-2.0
// Shared by the CUDA tests: device buffers for test data, the CPU-vs-device comparison of one
// scheme (message bytes, decode, decode_add), and the main that exits 77 (CTest: skipped) when
// no GPU is present.
#pragma once

#define CATCH_CONFIG_RUNNER
#include "../support/generators.hpp"

#include <gradcomp/cuda.cuh>

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace gradcomp::test {

/// A device copy of a host vector.
template <class T>
struct on_device {
  detail::device_array<T> d;
  std::size_t n = 0;
  explicit on_device(const std::vector<T>& v) : d(std::max<std::size_t>(v.size(), 1)), n(v.size()) {
    detail::cuda_check(cudaMemcpy(d.data(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice),
                       "test upload");
  }
  explicit on_device(std::size_t count) : d(std::max<std::size_t>(count, 1)), n(count) {}
  std::span<T> span() const { return {d.data(), n}; }
  std::vector<T> host() const {
    std::vector<T> v(n);
    detail::cuda_check(cudaMemcpy(v.data(), d.data(), n * sizeof(T), cudaMemcpyDeviceToHost),
                       "test download");
    return v;
  }
};

/// Number of elements whose bits differ (0 when equal), with the first one reported.
template <class T>
std::size_t bit_differences(const std::vector<T>& a, const std::vector<T>& b) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (detail::float_bits(to_float(a[i])) != detail::float_bits(to_float(b[i]))) {
      if (count == 0)
        UNSCOPED_INFO("first differing element " << i << ": " << to_float(a[i]) << " vs CPU "
                                                 << to_float(b[i]));
      ++count;
    }
  }
  return count;
}

template <class S, class T = float>
void check_scheme(const S& s, const model_layout& layout, const std::vector<T>& grad,
                  const stream_key& key) {
  codec<S> host(s, layout);
  codec<S> dev(s, layout);
  // CPU
  std::vector<std::byte> cpu_msg(host.template max_encoded_bytes<T>());
  cpu_msg.resize(host.encode(cpu, std::span<const T>(grad), std::span<std::byte>(cpu_msg), key));
  std::vector<T> cpu_out(grad.size());
  host.decode(cpu, std::span<const std::byte>(cpu_msg), std::span<T>(cpu_out));
  // GPU
  const cuda_policy gpu{};
  on_device<T> g(grad);
  if constexpr (S::is_sparse || S::is_composite) {
    REQUIRE(dev.template max_encoded_bytes<T>() >= cpu_msg.size()); // a bound
  } else {
    REQUIRE(dev.template max_encoded_bytes<T>() == cpu_msg.size()); // exact for fixed widths
  }
  on_device<std::byte> m(dev.template max_encoded_bytes<T>());
  const std::size_t bytes = dev.encode(gpu, std::span<const T>(g.d.data(), g.n), m.span(), key);
  REQUIRE(bytes == cpu_msg.size());
  const std::vector<std::byte> gpu_msg = m.host();
  // report where the bytes differ (payload first: the checksum differs whenever anything does)
  std::size_t differing = 0, first_payload_diff = bytes;
  for (std::size_t i = 0; i < bytes; ++i) {
    if (gpu_msg[i] != cpu_msg[i]) {
      ++differing;
      if ((i < 48 || i >= 56) && first_payload_diff == bytes)
        first_payload_diff = i;
    }
  }
  if (differing > 0) {
    const message_info info = inspect_message(cpu_msg);
    std::size_t span = 0;
    while (span + 1 < info.spans.size() && info.spans[span + 1].offset <= first_payload_diff)
      ++span;
    UNSCOPED_INFO(
        "scheme " << S::compressor_type::name << "/" << S::granularity_type::name << ", value type "
                  << value_traits<T>::name << ": " << differing << " of " << bytes
                  << " bytes differ, first outside the checksum at " << first_payload_diff
                  << " (span " << span << ", payload offset " << info.spans[span].offset << ", "
                  << (first_payload_diff < bytes
                          ? std::to_string(static_cast<int>(gpu_msg[first_payload_diff])) +
                                " vs CPU " +
                                std::to_string(static_cast<int>(cpu_msg[first_payload_diff]))
                          : std::string("-"))
                  << ")");
  }
  REQUIRE(differing == 0);
  // decode on the device, assign and add
  on_device<T> out(grad.size());
  dev.decode(gpu, std::span<const std::byte>(m.d.data(), bytes), out.span());
  REQUIRE(bit_differences(out.host(), cpu_out) == 0);
  std::vector<T> twice = cpu_out;
  host.decode_add(cpu, std::span<const std::byte>(cpu_msg), std::span<T>(twice));
  dev.decode_add(gpu, std::span<const std::byte>(m.d.data(), bytes), out.span());
  REQUIRE(bit_differences(out.host(), twice) == 0);
  // the elements the message carries (DGC's mask)
  std::vector<std::uint8_t> cpu_sent(grad.size());
  host.sent_elements(cpu, std::span<const std::byte>(cpu_msg), std::span<std::uint8_t>(cpu_sent));
  on_device<std::uint8_t> sent(std::vector<std::uint8_t>(grad.size(), 7));
  dev.sent_elements(gpu, std::span<const std::byte>(m.d.data(), bytes), sent.span());
  REQUIRE(sent.host() == cpu_sent);
}

template <class S>
void check_all_granularities(const typename S::compressor_type& c,
                             const typename S::encoding_type& e = {}) {
  using C = typename S::compressor_type;
  using E = typename S::encoding_type;
  const model_layout layout = test::odd_layout();
  for (std::uint64_t seed : test::seeds(2)) {
    for (test::distribution d : test::all_distributions) {
      CAPTURE(seed, test::to_string(d));
      const auto x = test::make_input(layout.total_size(), d, seed);
      const stream_key key{seed, 17 + seed, 3, role::worker};
      check_scheme(scheme<C, layer_span, E>{c, {}, e}, layout, x, key);
      check_scheme(scheme<C, flat_span, E>{c, {}, e}, layout, x, key);
      check_scheme(scheme<C, bucket_span, E>{c, {1000}, e}, layout, x, key);
      check_scheme(scheme<C, layer_span, E>{c, {}, e}, layout, test::convert<gradcomp::half>(x),
                   key);
      check_scheme(scheme<C, flat_span, E>{c, {}, e}, layout, test::convert<gradcomp::bfloat16>(x),
                   key);
    }
  }
}

/// The error code of a CPU decode of `bytes` (errc::invalid_parameter when it is accepted).
template <class S>
errc host_decode_error(codec<S>& host, const std::vector<std::byte>& bytes) {
  std::vector<float> out(host.layout().total_size());
  try {
    host.decode(cpu, std::span<const std::byte>(bytes), std::span<float>(out));
  } catch (const gradcomp::error& e) {
    return e.code();
  }
  return errc::invalid_parameter;
}

/// The error code of a CPU sent_elements of `bytes` (errc::invalid_parameter when accepted).
template <class S>
errc host_sent_error(codec<S>& host, const std::vector<std::byte>& bytes) {
  std::vector<std::uint8_t> sent(host.layout().total_size());
  try {
    host.sent_elements(cpu, std::span<const std::byte>(bytes), std::span<std::uint8_t>(sent));
  } catch (const gradcomp::error& e) {
    return e.code();
  }
  return errc::invalid_parameter;
}

/// The error code of a device decode of `bytes` (errc::invalid_parameter when it is accepted);
/// checks that a refused message left the output untouched.
template <class D>
errc device_decode_error(D& dev, const std::vector<std::byte>& bytes) {
  on_device<std::byte> m(bytes);
  on_device<float> out(std::vector<float>(dev.layout().total_size(), 42.0f));
  try {
    dev.decode(cuda_policy{}, std::span<const std::byte>(m.d.data(), m.n), out.span());
  } catch (const gradcomp::error& e) {
    for (float v : out.host())
      REQUIRE(v == 42.0f);
    return e.code();
  }
  return errc::invalid_parameter;
}

/// The error code of a device sent_elements of `bytes` (errc::invalid_parameter when it is
/// accepted); checks that a refused message left the mask untouched.
template <class D>
errc device_sent_error(D& dev, const std::vector<std::byte>& bytes) {
  on_device<std::byte> m(bytes);
  on_device<std::uint8_t> sent(std::vector<std::uint8_t>(dev.layout().total_size(), 7));
  try {
    dev.sent_elements(cuda_policy{}, std::span<const std::byte>(m.d.data(), m.n), sent.span());
  } catch (const gradcomp::error& e) {
    for (std::uint8_t v : sent.host())
      REQUIRE(v == 7);
    return e.code();
  }
  return errc::invalid_parameter;
}

/// Payload edits (bytes set to 0xff, 0x00, 0x7f across the message), each re-sealed with a valid
/// checksum: the device decoder and sent_elements give the CPU's error codes, their outputs
/// untouched.
template <class S, class D>
void check_resealed_edits(codec<S>& host, D& dev, const std::vector<float>& x) {
  std::vector<std::byte> msg(host.max_encoded_bytes());
  msg.resize(host.encode(cpu, std::span<const float>(x), std::span<std::byte>(msg), {}));
  for (std::size_t pos = 56; pos < msg.size(); pos += 1 + msg.size() / 301) {
    for (std::byte b : {std::byte{0xff}, std::byte{0x00}, std::byte{0x7f}}) {
      auto bad = msg;
      bad[pos] = b;
      detail::seal_message(bad);
      CAPTURE(pos, static_cast<int>(b));
      REQUIRE(device_decode_error(dev, bad) == host_decode_error(host, bad));
      REQUIRE(device_sent_error(dev, bad) == host_sent_error(host, bad));
    }
  }
}

} // namespace gradcomp::test

/// The main of a CUDA test: skipped (exit 77) without a device.
#define GRADCOMP_CUDA_TEST_MAIN(name)                                                              \
  int main(int argc, char** argv) {                                                                \
    if (!gradcomp::cuda_device_available()) {                                                      \
      std::printf("no CUDA device: " name " skipped\n");                                           \
      return 77;                                                                                   \
    }                                                                                              \
    return Catch::Session().run(argc, argv);                                                       \
  }
