// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: arbitrary bytes into the decoder of every fuzzed spec (fuzz_specs.hpp). The
// first two bytes pick the spec; the rest is the message. Passes when every input, decoded into
// fp32 and into fp16, gives a named error with the output untouched, or finite values that
// decode_add repeats.
#include "fuzz_specs.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace gradcomp;
  if (size < fuzz::selector_bytes) {
    return 0;
  }
  any_codec c(fuzz::selected_spec(data), fuzz::fuzz_layout());
  const std::span<const std::byte> msg(
      reinterpret_cast<const std::byte*>(data) + fuzz::selector_bytes, size - fuzz::selector_bytes);
  fuzz::decode_into<float>(c, msg);
  fuzz::decode_into<half>(c, msg); // where a finite fp32 value may overflow
  return 0;
}
