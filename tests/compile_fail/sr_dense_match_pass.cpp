// SPDX-License-Identifier: Apache-2.0
// Twin of sr_dense_mismatch_fail.cpp: the matching encoding compiles.
#include <gradcomp/gradcomp.hpp>
int main() {
  using namespace gradcomp;
  codec c(scheme<stochastic_rounding<bfloat16>, flat_span, dense<bfloat16>>{},
          model_layout::from_sizes({4}));
  return c.max_encoded_bytes<float>() > 0 ? 0 : 1;
}
