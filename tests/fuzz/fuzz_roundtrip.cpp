// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the input is the material of a gradient (bytes 0-1: the spec, fuzz_specs.hpp;
// bytes 2-9: the seed; then fp32 values, repeated to fill the layout). Encodes and checks: a
// non-finite gradient is rejected with non_finite_input, a value beyond the wire's fp16/bf16 range
// with value_out_of_range; otherwise the message fits max_encoded_bytes, re-encoding gives the
// same bytes, it decodes to finite values, the unscaled fp32 sparsifiers keep exact input values
// and zeros, identity/f32 gives the input back and sign decodes to +-1.
#include "fuzz_specs.hpp"

#include <cmath>
#include <cstring>

namespace {

using namespace gradcomp;

constexpr std::size_t seed_at = fuzz::selector_bytes, values_at = seed_at + 8;

void check_values(const std::string& spec, const std::vector<float>& x,
                  const std::vector<float>& out) {
  const bool exact_or_zero = fuzz::keeps_input_values(spec);
  const bool exact = spec.starts_with("identity/") && spec.ends_with("/f32");
  const bool unit = spec.starts_with("sign/");
  for (std::size_t i = 0; i < x.size(); ++i) {
    fuzz::check(std::isfinite(out[i]));
    fuzz::check(!exact_or_zero || out[i] == 0.0f || out[i] == x[i]);
    fuzz::check(!exact || out[i] == x[i]);
    fuzz::check(!unit || out[i] == 1.0f || out[i] == -1.0f);
  }
}

void round_trip(const std::string& spec, const std::vector<float>& x, const stream_key& key) {
  any_codec c(spec, fuzz::fuzz_layout());
  std::vector<std::byte> m(c.max_encoded_bytes<float>()), m2(m.size());
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
  check_values(spec, x, out);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < values_at + 4) {
    return 0;
  }
  std::uint64_t seed = 0;
  std::memcpy(&seed, data + seed_at, 8);
  const std::size_t nvals = (size - values_at) / 4;
  std::vector<float> x(fuzz::fuzz_layout().total_size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    std::memcpy(&x[i], data + values_at + 4 * (i % nvals), 4);
  }
  const stream_key key{seed, seed >> 40, static_cast<std::uint32_t>(seed & 0xfffff)};
  round_trip(fuzz::selected_spec(data), x, key);
  return 0;
}
