// SPDX-License-Identifier: Apache-2.0
// Fixed-width schemes on the device equal the CPU byte for byte (messages) and bit for bit
// (decode, decode_add), on every granularity and gradient type: casts, signs and TernGrad.
#include "device_test_support.cuh"

using namespace gradcomp;
using namespace gradcomp::test;

TEST_CASE("identity casts, signs and TernGrad: device messages equal CPU messages",
          "[cuda][identity]") {
  check_all_granularities<scheme<identity, layer_span, dense<float>>>({});
  check_all_granularities<scheme<identity, layer_span, dense<gradcomp::half>>>({});
  check_all_granularities<scheme<identity, layer_span, dense<gradcomp::bfloat16>>>({});
  check_all_granularities<scheme<sign_sgd, layer_span>>({});
  check_all_granularities<scheme<scaled_sign, layer_span>>({});
  check_all_granularities<scheme<terngrad, layer_span>>({});
  check_all_granularities<scheme<terngrad, layer_span>>({true, 2.5});
}

GRADCOMP_CUDA_TEST_MAIN("test_device_dense_scales")
