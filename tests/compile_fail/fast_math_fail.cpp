// SPDX-License-Identifier: Apache-2.0
// compile-flags: -ffast-math
// expected-error: break the NaN policy and bit-identical results
// -ffast-math lets the compiler drop NaN checks and reorder the canonical sums: refused.
#include <gradcomp/gradcomp.hpp>
int main() {
  return 0;
}
