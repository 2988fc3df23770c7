// SPDX-License-Identifier: Apache-2.0
#pragma once

/// @file
/// Umbrella header of gradcomp's CPU library. Never includes a CUDA header; the CUDA backend is
/// <gradcomp/cuda.cuh>.

#include "backend/tags.hpp"
#include "codec.hpp"
#include "compressor/adaptive_threshold.hpp"
#include "compressor/identity.hpp"
#include "compressor/natural.hpp"
#include "compressor/qsgd.hpp"
#include "compressor/random_k.hpp"
#include "compressor/sign_sgd.hpp"
#include "compressor/stochastic_rounding.hpp"
#include "compressor/terngrad.hpp"
#include "compressor/threshold_v.hpp"
#include "compressor/topk.hpp"
#include "concepts.hpp"
#include "config.hpp"
#include "core/float16.hpp"
#include "encoding/code_encodings.hpp"
#include "encoding/sparse_coo.hpp"
#include "encoding/wire_header.hpp"
#include "error.hpp"
#include "granularity/bucket_span.hpp"
#include "granularity/flat_span.hpp"
#include "granularity/layer_span.hpp"
#include "granularity/span_plan.hpp"
#include "layout/model_layout.hpp"
#include "layout/models.hpp"
#include "random/philox.hpp"
#include "random/stream_key.hpp"
#include "scheme.hpp"
#include "version.hpp"
