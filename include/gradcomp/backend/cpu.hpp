// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "cpu/checksum_blocks.hpp"
#include "cpu/codes.hpp"
#include "cpu/elementwise.hpp"
#include "cpu/parallel.hpp"
#include "cpu/reduce_groups.hpp"
#include "cpu/select_top_keys.hpp"

/// @file
/// The CPU backend: every primitive of detail/dispatch.hpp specialized for cpu_tag (one thread,
/// or a pool of threads over contiguous parts), for `gradcomp::cpu` and `gradcomp::cpu_threads(n)`.
