// SPDX-License-Identifier: Apache-2.0
// Twin of terngrad_sparse_fail.cpp: the valid pairing compiles.
#include <gradcomp/gradcomp.hpp>
gradcomp::scheme<gradcomp::terngrad, gradcomp::layer_span, gradcomp::ternary_2bit> s;
int main() {
  return 0;
}
