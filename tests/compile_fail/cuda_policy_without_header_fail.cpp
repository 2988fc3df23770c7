// SPDX-License-Identifier: Apache-2.0
// expected-error: primitive not implemented for this backend
// A CUDA execution policy used from a CPU-only translation unit is rejected at compile time.
#include <gradcomp/gradcomp.hpp>
struct fake_cuda_policy {
  using backend_tag = gradcomp::cuda_tag;
};
int main() {
  float x[4] = {};
  return static_cast<int>(gradcomp::detail::scan_max_abs(fake_cuda_policy{}, x, 4));
}
