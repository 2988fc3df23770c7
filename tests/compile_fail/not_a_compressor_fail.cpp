// SPDX-License-Identifier: Apache-2.0
// expected-error: C does not model gradcomp::compressor
#include <gradcomp/gradcomp.hpp>
struct not_a_compressor {};
gradcomp::scheme<not_a_compressor, gradcomp::flat_span, gradcomp::dense<float>> s;
int main() {
  return 0;
}
