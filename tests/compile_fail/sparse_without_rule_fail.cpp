// SPDX-License-Identifier: Apache-2.0
// expected-error: does not model gradcomp::sparsifier
#include <gradcomp/gradcomp.hpp>

#include <optional>

// A compressor with a sparse payload but no selection rule (compressor/selection_rule.hpp).
struct no_rule {
  using payload_kind = gradcomp::sparse_payload;
  static constexpr gradcomp::compressor_id id = gradcomp::compressor_id::topk;
  static constexpr std::string_view name = "no_rule";
  static constexpr bool is_unbiased = false;
  static constexpr bool is_elementwise = false;
  void validate() const {}
  [[nodiscard]] no_rule with_parameter(double) const { return *this; }
  [[nodiscard]] std::optional<double> omega(std::size_t) const { return std::nullopt; }
  [[nodiscard]] std::uint64_t parameter_word() const { return 0; }
  friend bool operator==(const no_rule&, const no_rule&) = default;
};
gradcomp::scheme<no_rule, gradcomp::flat_span, gradcomp::sparse_coo<float>> s;
int main() {
  return 0;
}
