// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: arbitrary bytes as the P or Q sum a PowerSGD worker waits for
// (lowrank_fixture.hpp; the first byte picks the case). Passes when every input gives a named
// gradcomp::error or, accepted, a finite output.
#include "lowrank_fixture.hpp"

#include <cmath>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace gradcomp;
  if (size < 1) {
    return 0;
  }
  fuzz::lowrank_case c = fuzz::make_lowrank_case(data[0]);
  const std::span<const std::byte> msg(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
  std::vector<float> out(c.worker.plan().total_size());
  try {
    if (c.waits_for_q) {
      c.worker.decode(msg, out);
    } else {
      std::vector<std::byte> q;
      c.worker.encode_q(msg, q);
      c.worker.abort_step();
      return 0;
    }
  } catch (const gradcomp::error&) {
    return 0;
  }
  for (const float v : out) {
    if (!std::isfinite(v)) {
      std::abort(); // an accepted message must decode to finite values
    }
  }
  return 0;
}
