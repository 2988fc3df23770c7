// SPDX-License-Identifier: Apache-2.0
// expected-error: encoding E cannot carry the payload kind
// TernGrad produces ternary codes, which a sparse index/value encoding cannot carry.
#include <gradcomp/gradcomp.hpp>
gradcomp::scheme<gradcomp::terngrad, gradcomp::layer_span, gradcomp::sparse_coo<float>> s;
int main() {
  return 0;
}
