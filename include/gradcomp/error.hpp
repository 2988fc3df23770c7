// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace gradcomp {

/// What went wrong. Every error gradcomp raises carries one of these plus a sentence naming
/// the offending field, layer or span.
enum class errc {
  invalid_parameter,   ///< a compressor, granularity or call parameter is out of range
  invalid_layout,      ///< a model layout is malformed (overlap, gap, overflow)
  size_mismatch,       ///< a buffer does not have the size the layout or plan requires
  non_finite_input,    ///< a gradient contains NaN or +-Inf (rejected by policy)
  buffer_too_small,    ///< the output buffer cannot hold the encoded message
  truncated_message,   ///< the message ends before a field it declares
  bad_magic,           ///< the message does not start with "GCMP"
  unsupported_version, ///< the wire-format version is not one this build reads
  scheme_mismatch,     ///< the message was written by another compressor/encoding/granularity
  layout_mismatch,     ///< the message's spans do not match the decoder's layout
  checksum_mismatch,   ///< the payload was altered after encoding
  corrupt_payload,     ///< a count, index, code or scale inside a span is invalid
  value_out_of_range,  ///< a finite value would overflow the encoding's value type (fp16 > 65504)
  wrong_step,          ///< a message belongs to another training step
  duplicate_message,   ///< a second message from the same worker in one step
  protocol_error,      ///< a call out of order (a broadcast before every worker was received)
  device_error,        ///< a CUDA runtime call failed (no device, out of memory, launch error)
  timeout,         ///< an exchange between ranks did not complete in time (names who is missing)
  peer_failed,     ///< another rank reported an error for this exchange (its text follows)
  transport_error, ///< the communication library (MPI, NCCL) returned an error
};

[[nodiscard]] constexpr std::string_view to_string(errc e) noexcept {
  switch (e) {
  case errc::invalid_parameter:
    return "invalid_parameter";
  case errc::wrong_step:
    return "wrong_step";
  case errc::value_out_of_range:
    return "value_out_of_range";
  case errc::duplicate_message:
    return "duplicate_message";
  case errc::protocol_error:
    return "protocol_error";
  case errc::device_error:
    return "device_error";
  case errc::timeout:
    return "timeout";
  case errc::peer_failed:
    return "peer_failed";
  case errc::transport_error:
    return "transport_error";
  case errc::invalid_layout:
    return "invalid_layout";
  case errc::size_mismatch:
    return "size_mismatch";
  case errc::non_finite_input:
    return "non_finite_input";
  case errc::buffer_too_small:
    return "buffer_too_small";
  case errc::truncated_message:
    return "truncated_message";
  case errc::bad_magic:
    return "bad_magic";
  case errc::unsupported_version:
    return "unsupported_version";
  case errc::scheme_mismatch:
    return "scheme_mismatch";
  case errc::layout_mismatch:
    return "layout_mismatch";
  case errc::checksum_mismatch:
    return "checksum_mismatch";
  case errc::corrupt_payload:
    return "corrupt_payload";
  }
  return "unknown";
}

/// The exception type of gradcomp: a code to branch on and a message to read.
class error : public std::runtime_error {
public:
  error(errc code, const std::string& what)
      : std::runtime_error("gradcomp: " + std::string(to_string(code)) + ": " + what), code_(code),
        prefix_(std::char_traits<char>::length("gradcomp: ") + to_string(code).size() + 2) {}
  [[nodiscard]] errc code() const noexcept { return code_; }
  /// what() without the "gradcomp: <code>: " prefix.
  [[nodiscard]] std::string_view reason() const noexcept {
    return std::string_view(what()).substr(prefix_);
  }

private:
  errc code_;
  std::size_t prefix_;
};

namespace detail {
[[noreturn]] inline void fail(errc code, const std::string& what) {
  throw error(code, what);
}
inline void require(bool ok, errc code, const std::string& what) {
  if (!ok) {
    fail(code, what);
  }
}
/// As above, but the message is built only on failure: for checks inside per-span and
/// per-element loops, where formatting a string on every pass would dominate the work.
template <class MakeMessage>
requires std::is_invocable_r_v<std::string, MakeMessage>
void require(bool ok, errc code, MakeMessage&& make_message) {
  if (!ok) {
    fail(code, make_message());
  }
}
} // namespace detail
} // namespace gradcomp
