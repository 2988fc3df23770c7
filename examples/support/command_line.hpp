// SPDX-License-Identifier: Apache-2.0
#pragma once

// What the trainers (mpi_train, torch_train) share on the command line: the paper's method, its
// parameter and granularity, the schedule and the data, read from argv with a clear message for a
// missing or malformed value; and the dispatch from a method's name to a compile-time scheme.

#include "fashion_mnist.hpp"

#include <gradcomp/gradcomp.hpp>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace gradcomp::examples {

/// Options of every trainer. Each trainer sets its own defaults before parsing.
struct training_options {
  std::string method = "topk"; ///< identity topk randomk threshold adaptive terngrad qsgd
  std::string granularity = "layer";
  double ratio = 0.01;                            ///< top-k, random-k
  double threshold = 0.01;                        ///< threshold-v
  std::uint32_t levels = 15;                      ///< QSGD
  bool feedback = false;                          ///< error feedback on the workers
  std::size_t epochs = 2, steps = 0, batch = 128; ///< steps per epoch, 0 = the whole set
  double lr = 0.1, momentum = 0.9;
  bool nesterov = true;
  std::uint64_t seed = 1;
  std::size_t train_limit = 0, test_limit = 0;
  std::string data = default_fashion_mnist_dir;
};

inline constexpr const char* training_usage =
    "  --method identity|topk|randomk|threshold|adaptive|terngrad|qsgd --granularity layer|flat\n"
    "  --ratio R --threshold V --levels S --feedback --epochs E --steps N --batch B --lr LR\n"
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
  if (a.is("--method"))
    t.method = a.value();
  else if (a.is("--granularity"))
    t.granularity = a.value();
  else if (a.is("--ratio"))
    t.ratio = a.number();
  else if (a.is("--threshold"))
    t.threshold = a.number();
  else if (a.is("--levels"))
    t.levels = static_cast<std::uint32_t>(a.count());
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
  if (t.granularity != "layer" && t.granularity != "flat")
    return "--granularity layer|flat";
  if (t.epochs == 0 || t.batch == 0)
    return "--epochs and --batch must be positive";
  return "";
}

/// f(scheme<C, G>{...}) for the compressor C named by t.method, with t's parameter.
/// Throws std::invalid_argument for an unknown name.
template <class G, class F>
decltype(auto) with_method(const training_options& t, F&& f) {
  const std::string& m = t.method;
  if (m == "identity")
    return f(scheme<identity, G>{});
  if (m == "topk")
    return f(scheme<topk, G>{{t.ratio}});
  if (m == "randomk")
    return f(scheme<random_k, G>{{t.ratio}});
  if (m == "threshold")
    return f(scheme<threshold_v, G>{{t.threshold}});
  if (m == "adaptive")
    return f(scheme<adaptive_threshold, G>{});
  if (m == "terngrad")
    return f(scheme<terngrad, G>{});
  if (m == "qsgd")
    return f(scheme<qsgd, G>{{t.levels}});
  throw std::invalid_argument("unknown --method " + m);
}

/// with_method for t.granularity's span type (layer_span or flat_span).
template <class F>
decltype(auto) with_scheme(const training_options& t, F&& f) {
  return t.granularity == "layer" ? with_method<layer_span>(t, f) : with_method<flat_span>(t, f);
}

} // namespace gradcomp::examples
