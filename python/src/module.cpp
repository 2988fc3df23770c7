// SPDX-License-Identifier: Apache-2.0
// gradcomp._gradcomp: the Python binding of any_codec and error_feedback over the compiled
// registry, and of PowerSGD (lowrank/powersgd.hpp). Buffers cross as (address, element count) of
// contiguous CPU memory, checked and passed by the Python layer (gradcomp/__init__.py) from torch
// tensors, so nothing is copied. The GIL is released while a codec runs.
#include <gradcomp/gradcomp.hpp>
#include <gradcomp/runtime/any_codec.hpp>

#include <cstddef>
#include <cstdint>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <span>
#include <string>
#include <vector>

namespace py = pybind11;
using namespace gradcomp;

namespace {

/// The gradient types the binding takes, as the Python layer numbers them.
enum class dtype_code : int { f32 = 0, f16 = 1, bf16 = 2 };

template <class F>
decltype(auto) with_value_type(int dtype, F&& f) {
  switch (static_cast<dtype_code>(dtype)) {
  case dtype_code::f32:
    return f(float{});
  case dtype_code::f16:
    return f(half{});
  case dtype_code::bf16:
    return f(bfloat16{});
  }
  throw py::value_error("gradcomp: unknown dtype code " + std::to_string(dtype));
}

template <class T>
std::span<T> view(std::uintptr_t address, std::size_t n) {
  return {reinterpret_cast<T*>(address), n};
}

model_layout layout_of(const std::vector<std::size_t>& sizes,
                       const std::vector<std::string>& names) {
  return model_layout::from_sizes(std::span<const std::size_t>(sizes), names);
}

stream_key key_of(std::uint64_t seed, std::uint64_t step, std::uint32_t rank, bool master) {
  return {seed, step, rank, master ? role::master : role::worker};
}

struct py_codec {
  any_codec codec;

  std::size_t max_encoded_bytes(int dtype) const {
    return with_value_type(dtype,
                           [&](auto t) { return codec.template max_encoded_bytes<decltype(t)>(); });
  }
  std::size_t encode(std::uintptr_t grad, std::size_t n, int dtype, std::uintptr_t out,
                     std::size_t out_bytes, const stream_key& key) {
    py::gil_scoped_release unlocked;
    return with_value_type(dtype, [&](auto t) {
      using T = decltype(t);
      return codec.encode(cpu, std::span<const T>(view<const T>(grad, n)),
                          view<std::byte>(out, out_bytes), key);
    });
  }
  void decode(std::uintptr_t msg, std::size_t msg_bytes, std::uintptr_t out, std::size_t n,
              int dtype, bool add) {
    py::gil_scoped_release unlocked;
    with_value_type(dtype, [&](auto t) {
      using T = decltype(t);
      const auto m = std::span<const std::byte>(view<const std::byte>(msg, msg_bytes));
      if (add) {
        codec.decode_add(cpu, m, view<T>(out, n));
      } else {
        codec.decode(cpu, m, view<T>(out, n));
      }
    });
  }
};

struct py_error_feedback {
  error_feedback<runtime_scheme> memory;

  std::size_t encode(std::uintptr_t grad, std::size_t n, float scale, std::uintptr_t out,
                     std::size_t out_bytes, const stream_key& key) {
    py::gil_scoped_release unlocked;
    return memory.encode(cpu, std::span<const float>(view<const float>(grad, n)), scale,
                         view<std::byte>(out, out_bytes), key);
  }
};

/// PowerSGD for one worker; each call leaves its message (or sum) in `message`, which the Python
/// layer copies out with take().
struct py_powersgd {
  powersgd worker;
  std::vector<std::byte> message;

  static lowrank_round round_of(const std::string& r) {
    if (r != "p" && r != "q") {
      throw py::value_error("gradcomp: a PowerSGD round is 'p' or 'q', got '" + r + "'");
    }
    return r == "p" ? lowrank_round::p : lowrank_round::q;
  }
  std::size_t encode_p(std::uintptr_t grad, std::size_t n) {
    py::gil_scoped_release unlocked;
    worker.encode_p(view<const float>(grad, n), message);
    return message.size();
  }
  std::size_t encode_q(std::uintptr_t sum, std::size_t bytes) {
    py::gil_scoped_release unlocked;
    worker.encode_q(view<const std::byte>(sum, bytes), message);
    return message.size();
  }
  void decode(std::uintptr_t sum, std::size_t bytes, std::uintptr_t out, std::size_t n) {
    py::gil_scoped_release unlocked;
    worker.decode(view<const std::byte>(sum, bytes), view<float>(out, n));
  }
  /// msgs: (address, bytes) of each worker's message of the round.
  std::size_t sum(const std::string& round,
                  const std::vector<std::pair<std::uintptr_t, std::size_t>>& msgs) {
    const lowrank_round r = round_of(round);
    std::vector<std::span<const std::byte>> views;
    for (const auto& [address, bytes] : msgs) {
      views.push_back(view<const std::byte>(address, bytes));
    }
    py::gil_scoped_release unlocked;
    worker.sum(r, views, message);
    return message.size();
  }
  void take(std::uintptr_t out, std::size_t bytes) const {
    if (bytes != message.size()) {
      throw py::value_error("gradcomp: take() into " + std::to_string(bytes) +
                            " bytes, the message has " + std::to_string(message.size()));
    }
    std::copy(message.begin(), message.end(), view<std::byte>(out, bytes).begin());
  }
};

powersgd make_powersgd(const std::vector<std::size_t>& sizes, const std::vector<std::size_t>& rows,
                       std::size_t rank, bool entire_model, bool error_feedback, std::uint64_t seed,
                       std::uint32_t worker_rank, double min_compression_rate) {
  if (rows.size() != sizes.size()) {
    throw py::value_error("gradcomp: " + std::to_string(rows.size()) + " row counts for " +
                          std::to_string(sizes.size()) + " layers");
  }
  std::vector<layer_info> layers;
  std::size_t offset = 0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    layers.push_back({"layer" + std::to_string(i), offset, sizes[i], rows[i]});
    offset += sizes[i];
  }
  const powersgd_options opt{rank, min_compression_rate, entire_model, error_feedback, seed};
  return powersgd(model_layout::from_layers(std::move(layers)), opt, worker_rank);
}

} // namespace

PYBIND11_MODULE(_gradcomp, m) {
  m.doc() = "gradcomp: gradient compressors for data-parallel training (C++ core)";
  // gradcomp.Error (a ValueError); its text starts with the error code, e.g.
  // "gradcomp: invalid_parameter: scheme spec 'topk:2': ..."
  py::register_exception<gradcomp::error>(m, "Error", PyExc_ValueError);

  py::class_<stream_key>(m, "StreamKey")
      .def(py::init(&key_of), py::arg("seed") = 0, py::arg("step") = 0, py::arg("rank") = 0,
           py::arg("master") = false);

  py::class_<py_codec>(m, "Codec")
      .def(py::init([](const std::string& spec, const std::vector<std::size_t>& sizes,
                       const std::vector<std::string>& names) {
             return py_codec{any_codec(spec, layout_of(sizes, names))};
           }),
           py::arg("spec"), py::arg("sizes"), py::arg("names") = std::vector<std::string>{})
      .def_property_readonly("spec", [](const py_codec& c) { return c.codec.spec(); })
      .def_property_readonly("scheme_name", [](const py_codec& c) { return c.codec.scheme_name(); })
      .def_property_readonly("total_size",
                             [](const py_codec& c) { return c.codec.layout().total_size(); })
      .def_property_readonly("span_count", [](const py_codec& c) { return c.codec.spans().size(); })
      .def("max_encoded_bytes", &py_codec::max_encoded_bytes, py::arg("dtype"))
      .def("encode", &py_codec::encode)
      .def("decode", &py_codec::decode);

  py::class_<py_error_feedback>(m, "ErrorFeedback")
      .def(py::init([](const std::string& spec, const std::vector<std::size_t>& sizes,
                       const std::vector<std::string>& names) {
             return py_error_feedback{
                 error_feedback<runtime_scheme>(runtime_scheme{spec}, layout_of(sizes, names))};
           }),
           py::arg("spec"), py::arg("sizes"), py::arg("names") = std::vector<std::string>{})
      .def("max_encoded_bytes",
           [](const py_error_feedback& e) { return e.memory.max_encoded_bytes(); })
      .def("encode", &py_error_feedback::encode)
      .def("reset", [](py_error_feedback& e) { e.memory.reset(); });

  py::class_<py_powersgd>(m, "PowerSGD")
      .def(py::init([](const std::vector<std::size_t>& sizes, const std::vector<std::size_t>& rows,
                       std::size_t rank, bool entire_model, bool error_feedback, std::uint64_t seed,
                       std::uint32_t worker_rank, double min_compression_rate) {
             return py_powersgd{make_powersgd(sizes, rows, rank, entire_model, error_feedback, seed,
                                              worker_rank, min_compression_rate),
                                {}};
           }),
           py::arg("sizes"), py::arg("rows"), py::arg("rank"), py::arg("entire_model"),
           py::arg("error_feedback"), py::arg("seed"), py::arg("worker_rank"),
           py::arg("min_compression_rate"))
      .def_property_readonly("step", [](const py_powersgd& p) { return p.worker.step(); })
      .def_property_readonly("total_size",
                             [](const py_powersgd& p) { return p.worker.plan().total_size(); })
      .def_property_readonly("compressed_matrices",
                             [](const py_powersgd& p) {
                               std::size_t n = 0;
                               for (const auto& matrix : p.worker.plan().matrices()) {
                                 n += matrix.compressed() ? 1 : 0;
                               }
                               return n;
                             })
      .def("encode_p", &py_powersgd::encode_p)
      .def("encode_q", &py_powersgd::encode_q)
      .def("decode", &py_powersgd::decode)
      .def("sum", &py_powersgd::sum)
      .def("take", &py_powersgd::take)
      .def("abort_step", [](py_powersgd& p) { p.worker.abort_step(); });

  m.def("registry_help", &runtime::registry_help);
  m.def("example_specs", &runtime::example_specs);
}
