// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: arbitrary bytes into the frame parser (inspect_message). Passes when every
// input is either rejected with a named gradcomp::error or parsed into spans that lie inside it.
#include "fuzz_specs.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace gradcomp;
  const std::span<const std::byte> msg(reinterpret_cast<const std::byte*>(data), size);
  try {
    const message_info info = inspect_message(msg);
    for (const auto& s : info.spans) {
      fuzz::check(s.offset <= size && s.bytes <= size - s.offset);
    }
  } catch (const gradcomp::error&) {
  }
  return 0;
}
