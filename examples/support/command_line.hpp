// SPDX-License-Identifier: Apache-2.0
#pragma once

// What the trainers (mpi_train, torch_train) share on the command line: the paper's method, its
// parameter and granularity (or any registered scheme by its spec string), the schedule and the
// data, read from argv with a clear message for a missing or malformed value.

#include "fashion_mnist.hpp"

#include <gradcomp/gradcomp.hpp>
#include <gradcomp/runtime/any_codec.hpp>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace gradcomp::examples {

/// Options of every trainer. Each trainer sets its own defaults before parsing.
struct training_options {
  std::string scheme;          ///< a registered scheme's spec; empty: from method and parameters
  std::string method = "topk"; ///< identity topk randomk threshold adaptive terngrad qsgd, ...
  std::string granularity = "layer";
  double ratio = 0.01;                            ///< top-k, random-k
  double threshold = 0.01;                        ///< threshold-v
  std::uint32_t levels = 15;                      ///< QSGD
  std::size_t rank = 2;                           ///< PowerSGD
  bool feedback = false;                          ///< error feedback on the workers
  std::size_t epochs = 2, steps = 0, batch = 128; ///< steps per epoch, 0 = the whole set
  double lr = 0.1, momentum = 0.9;
  bool nesterov = true;
  std::uint64_t seed = 1;
  std::size_t train_limit = 0, test_limit = 0;
  std::string data = default_fashion_mnist_dir;
};

inline constexpr const char* training_usage =
    "  --scheme SPEC (any registered scheme, e.g. topk:0.01/layer/coo-f16, terngrad:clip/layer,\n"
    "  compose(topk:0.01,qsgd:15)/layer; --scheme help lists them) or\n"
    "  --method identity|topk|randomk|threshold|adaptive|terngrad|qsgd|powersgd|<registered "
    "compressor>\n"
    "  --granularity layer|flat|bucket:N\n"
    "  --ratio R --threshold V --levels S --rank R --feedback --epochs E --steps N --batch B --lr "
    "LR\n"
    "  --momentum M --nesterov|--no-nesterov --seed S --train-limit N --test-limit N --data DIR\n";

/// A cursor over argv; every read reports a missing or malformed value through `usage`.
class arguments {
public:
  using usage_fn = void (*)(const std::string&); // must not return

  arguments(int argc, char** argv, usage_fn usage) : argc_(argc), argv_(argv), usage_(usage) {}

  bool next() { return ++i_ < argc_; }
  [[nodiscard]] std::string flag() const { return argv_[i_]; }
  [[nodiscard]] bool is(const char* f) const { return flag() == f; }

  std::string value() {
    if (i_ + 1 >= argc_) {
      usage_(flag() + " needs a value");
    }
    return argv_[++i_];
  }
  double number() {
    const std::string f = flag(), v = value();
    try {
      std::size_t used = 0;
      const double x = std::stod(v, &used);
      if (used == v.size()) {
        return x;
      }
    } catch (const std::exception&) {
    }
    usage_(f + " needs a number, got '" + v + "'");
    return 0;
  }
  std::size_t count() {
    const double x = number();
    if (x < 0 || x != static_cast<double>(static_cast<std::size_t>(x))) {
      usage_(flag() + " needs a non-negative integer");
    }
    return static_cast<std::size_t>(x);
  }
  void unknown() { usage_("unknown option " + flag()); }

private:
  int argc_;
  char** argv_;
  usage_fn usage_;
  int i_ = 0;
};

/// Reads the flag at the cursor into `t` if it is one of training_options'; false otherwise.
inline bool read_training_option(arguments& a, training_options& t) {
  if (a.is("--scheme"))
    t.scheme = a.value();
  else if (a.is("--method"))
    t.method = a.value();
  else if (a.is("--granularity"))
    t.granularity = a.value();
  else if (a.is("--ratio"))
    t.ratio = a.number();
  else if (a.is("--threshold"))
    t.threshold = a.number();
  else if (a.is("--levels"))
    t.levels = static_cast<std::uint32_t>(a.count());
  else if (a.is("--rank"))
    t.rank = a.count();
  else if (a.is("--feedback"))
    t.feedback = true;
  else if (a.is("--epochs"))
    t.epochs = a.count();
  else if (a.is("--steps"))
    t.steps = a.count();
  else if (a.is("--batch"))
    t.batch = a.count();
  else if (a.is("--lr"))
    t.lr = a.number();
  else if (a.is("--momentum"))
    t.momentum = a.number();
  else if (a.is("--nesterov"))
    t.nesterov = true;
  else if (a.is("--no-nesterov"))
    t.nesterov = false;
  else if (a.is("--seed"))
    t.seed = a.count();
  else if (a.is("--train-limit"))
    t.train_limit = a.count();
  else if (a.is("--test-limit"))
    t.test_limit = a.count();
  else if (a.is("--data"))
    t.data = a.value();
  else
    return false;
  return true;
}

/// The checks every trainer needs after parsing; returns the problem or "".
inline std::string check_training_options(const training_options& t) {
  if (t.epochs == 0 || t.batch == 0)
    return "--epochs and --batch must be positive";
  return "";
}

/// The shortest text that parses back to x.
inline std::string number_text(double x) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, r.ptr);
}

/// The spec of t's method with its parameter over `granularity` (the paper's names map to the
/// registry's: randomk -> random_k, threshold -> threshold_v, adaptive -> adaptive_threshold;
/// any other registered compressor name is taken as it is).
inline std::string method_spec(const training_options& t, const std::string& granularity) {
  const std::string& m = t.method;
  std::string spec;
  if (m == "topk" || m == "randomk")
    spec = (m == "topk" ? "topk:" : "random_k:") + number_text(t.ratio);
  else if (m == "threshold")
    spec = "threshold_v:" + number_text(t.threshold);
  else if (m == "adaptive")
    spec = "adaptive_threshold";
  else if (m == "qsgd")
    spec = "qsgd:" + std::to_string(t.levels);
  else
    spec = m;
  return spec + "/" + granularity;
}

/// The workers' scheme: --scheme as given, else the method's over --granularity. Validated here
/// (a bad spec is a named error listing the choices), with the registry's help for "help".
inline runtime_scheme worker_scheme(const training_options& t, const model_layout& layout) {
  if (t.scheme == "help") {
    throw std::invalid_argument("the registered schemes:\n" + runtime::registry_help());
  }
  runtime_scheme s{t.scheme.empty() ? method_spec(t, t.granularity) : t.scheme};
  (void)any_codec(s, layout);
  return s;
}

} // namespace gradcomp::examples
