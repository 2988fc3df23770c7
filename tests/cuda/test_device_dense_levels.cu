// SPDX-License-Identifier: Apache-2.0
// Fixed-width schemes on the device equal the CPU byte for byte (messages) and bit for bit
// (decode, decode_add), on every granularity and gradient type: QSGD, natural, stochastic
// rounding.
#include "device_test_support.cuh"

using namespace gradcomp;
using namespace gradcomp::test;

TEST_CASE("QSGD, natural and stochastic rounding: device messages equal CPU messages",
          "[cuda][identity]") {
  check_all_granularities<scheme<qsgd, layer_span>>({15});
  check_all_granularities<scheme<qsgd, layer_span>>({255});
  check_all_granularities<scheme<qsgd, layer_span>>({1});
  check_all_granularities<scheme<qsgd, layer_span>>({7, 128});
  check_all_granularities<scheme<natural, layer_span>>({});
  check_all_granularities<scheme<natural, layer_span, natural_codes<8>>>({});
  check_all_granularities<scheme<stochastic_rounding<gradcomp::bfloat16>, layer_span>>({});
  check_all_granularities<scheme<stochastic_rounding<gradcomp::half>, layer_span>>({});
}

GRADCOMP_CUDA_TEST_MAIN("test_device_dense_levels")
