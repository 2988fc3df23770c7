// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: arbitrary bytes into one decoder family (GRADCOMP_FUZZ_FAMILY: 0 sparse,
// 1 fixed-width codes, 2 dense and raw spans, 3 compositions). Byte 0 picks the scheme; the rest
// is the message. Passes when every input gives a named error with the output untouched, or a
// decode that decode_add repeats.
#include "fuzz_schemes.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace gradcomp;
  if (size == 0) {
    return 0;
  }
  const std::span<const std::byte> msg(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
  auto run = [&](const auto& s) { fuzz::decode_one(s, msg); };
#if GRADCOMP_FUZZ_FAMILY == 0
  fuzz::with_sparse_scheme(data[0], run);
#elif GRADCOMP_FUZZ_FAMILY == 1
  fuzz::with_code_scheme(data[0], run);
#elif GRADCOMP_FUZZ_FAMILY == 2
  fuzz::with_dense_scheme(data[0], run);
#else
  fuzz::with_composite_scheme(data[0], run);
#endif
  return 0;
}
