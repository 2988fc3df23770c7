// SPDX-License-Identifier: Apache-2.0
// expected-error: must be encoded as dense<V> \(same V\)
// Stochastic rounding to bf16 sent as fp16 values would silently round twice.
#include <gradcomp/gradcomp.hpp>

#include <vector>
int main() {
  using namespace gradcomp;
  codec c(scheme<stochastic_rounding<bfloat16>, flat_span, dense<half>>{},
          model_layout::from_sizes({4}));
  return static_cast<int>(c.max_encoded_bytes<float>());
}
