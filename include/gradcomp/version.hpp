// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>

namespace gradcomp {
inline constexpr int version_major = 0;
inline constexpr int version_minor = 1;
inline constexpr int version_patch = 0;
/// Version of the wire format written by encode(); decoders reject any other.
inline constexpr std::uint16_t wire_format_version = 3;
} // namespace gradcomp
