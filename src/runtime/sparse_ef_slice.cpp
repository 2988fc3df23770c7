// SPDX-License-Identifier: Apache-2.0
// One slice of the scheme registry (runtime/registry.hpp), compiled apart from the others.
#include <gradcomp/runtime/codec_model.hpp>

namespace gradcomp::runtime {
template std::unique_ptr<gradcomp::detail::any_codec_base>
make_slice_codec<sparse_ef_slice>(std::size_t, const scheme_spec&, model_layout);
} // namespace gradcomp::runtime
