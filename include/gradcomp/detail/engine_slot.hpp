// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <memory>

/// @file
/// Where a codec keeps the state a backend builds for it on first use (the CUDA backend's device
/// tables and workspaces). The slot is owned by the codec and is never shared: a copied or moved
/// codec starts with an empty slot and its backend state is built again on its first call, so
/// that state may refer to the codec that owns it.

namespace gradcomp::detail {

class engine_slot {
public:
  /// What a backend keeps in the slot.
  struct engine {
    virtual ~engine() = default;
  };

  engine_slot() = default;
  engine_slot(const engine_slot&) noexcept {}
  engine_slot(engine_slot&&) noexcept {}
  engine_slot& operator=(const engine_slot&) noexcept {
    held_.reset();
    return *this;
  }
  engine_slot& operator=(engine_slot&&) noexcept {
    held_.reset();
    return *this;
  }
  ~engine_slot() = default;

  /// The engine of type E, built by make() (returning std::unique_ptr<E>) on the first call.
  template <class E, class Make>
  E& get(const Make& make) {
    if (!held_) {
      held_ = make();
    }
    return static_cast<E&>(*held_);
  }
  /// The engine of type E, or null when none was built yet.
  template <class E>
  [[nodiscard]] const E* find() const noexcept {
    return static_cast<const E*>(held_.get());
  }

private:
  std::unique_ptr<engine> held_;
};

} // namespace gradcomp::detail
