// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the input is the material of a gradient (byte 0: the scheme, across every
// family; bytes 1-8: the seed; then fp32 values, repeated to fill the layout). Encodes and checks:
// a non-finite gradient is rejected with non_finite_input, a value beyond the wire's fp16/bf16
// range with value_out_of_range; otherwise the message fits
// max_encoded_bytes, re-encoding gives the same bytes, it decodes to finite values, top-k keeps
// exact input values and zeros, sign decodes to +-1.
#include "fuzz_schemes.hpp"

#include <cstring>

namespace {

using namespace gradcomp;

template <class Scheme>
void round_trip(const Scheme& s, const std::vector<float>& x, const stream_key& key) {
  codec<Scheme> c(s, fuzz::fuzz_layout());
  std::vector<std::byte> m(c.template max_encoded_bytes<float>()), m2(m.size());
  bool finite = true;
  for (float v : x) {
    finite = finite && std::isfinite(v);
  }
  std::size_t bytes = 0;
  try {
    bytes = c.encode(cpu, std::span<const float>(x), std::span<std::byte>(m), key);
  } catch (const gradcomp::error& e) {
    // a finite value the wire's fp16/bf16, a norm or a sparsifier's scale cannot hold, or (only
    // with a non-finite input somewhere; spans are checked in order, the first problem is named)
    // a non-finite input; never a message its own decoder rejects
    fuzz::check(e.code() == errc::value_out_of_range ||
                (!finite && e.code() == errc::non_finite_input));
    return;
  }
  fuzz::check(finite && bytes <= m.size());
  fuzz::check(c.encode(cpu, std::span<const float>(x), std::span<std::byte>(m2), key) == bytes);
  fuzz::check(std::memcmp(m.data(), m2.data(), bytes) == 0);
  std::vector<float> out(x.size());
  c.decode(cpu, std::span<const std::byte>(m.data(), bytes), std::span<float>(out));
  for (std::size_t i = 0; i < x.size(); ++i) {
    fuzz::check(std::isfinite(out[i]));
    if constexpr (std::is_same_v<Scheme, scheme<topk, layer_span>>) {
      fuzz::check(out[i] == 0.0f || out[i] == x[i]);
    }
    if constexpr (std::is_same_v<Scheme, scheme<sign_sgd, flat_span>>) {
      fuzz::check(out[i] == 1.0f || out[i] == -1.0f);
    }
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 13) {
    return 0;
  }
  std::uint64_t seed = 0;
  std::memcpy(&seed, data + 1, 8);
  const std::size_t nvals = (size - 9) / 4;
  std::vector<float> x(fuzz::fuzz_layout().total_size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    std::memcpy(&x[i], data + 9 + 4 * (i % nvals), 4);
  }
  const stream_key key{seed, seed >> 40, static_cast<std::uint32_t>(seed & 0xfffff)};
  auto run = [&](const auto& s) { round_trip(s, x, key); };
  const unsigned which = data[0];
  switch (which % 4) {
  case 0:
    fuzz::with_sparse_scheme(which / 4, run);
    break;
  case 1:
    fuzz::with_code_scheme(which / 4, run);
    break;
  case 2:
    fuzz::with_dense_scheme(which / 4, run);
    break;
  default:
    fuzz::with_composite_scheme(which / 4, run);
    break;
  }
  return 0;
}
