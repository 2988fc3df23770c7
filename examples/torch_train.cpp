// SPDX-License-Identifier: Apache-2.0
// A libtorch trainer for the paper's question: does layer-wise or entire-model compression train
// better? A small CNN (12 parameter tensors from 8 to 16,384 elements, batch norm) or a small
// ResNet (--model resnet: 29 tensors, support/torch_models.hpp) on Fashion-MNIST, n simulated
// data-parallel workers, gradients compressed by gradcomp straight from autograd's buffers
// (gradcomp/interop/torch_bridge.hpp: no copies), the paper's schedule scaled down (global batch,
// learning rate rising linearly to its peak over the warm-up, then falling linearly to zero;
// Nesterov momentum optional).
//
//   torch_train --method topk --ratio 0.01 --granularity layer --workers 4 --epochs 3 --csv out.csv
//   torch_train --scheme 'compose(topk:0.01,qsgd:15)/layer' --feedback --master qsgd:255/flat
//   torch_train --method powersgd --rank 2 --granularity flat --feedback
//
// Prints a progress bar with the running loss and, per epoch, test accuracy and bytes sent;
// --csv appends one row per epoch. --theory FILE probes worker 0's gradient at the first step and
// at the end of every epoch with the method's layer-wise and entire-model operators (per-layer
// second moments and compression errors, support/compression_probe.hpp).

#include "support/command_line.hpp"
#include "support/compression_probe.hpp"
#include "support/fashion_mnist.hpp"
#include "support/torch_models.hpp"

#include <gradcomp/gradcomp.hpp>
#include <gradcomp/interop/torch_bridge.hpp>
#include <gradcomp/runtime/any_codec.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <torch/torch.h>
#include <vector>

using namespace gradcomp;
namespace ex = gradcomp::examples;

namespace {

ex::training_options torch_defaults() {
  ex::training_options t;
  t.epochs = 3;
  t.lr = 0.4;
  return t;
}

struct config {
  ex::training_options t = torch_defaults();
  std::string master = "identity"; // identity | same (Q_W's method, entire-model) | a spec
  std::string model = "cnn";       // cnn | resnet (support/torch_models.hpp)
  std::size_t workers = 4;
  double warmup = 0.5; // epochs
  std::string csv;
  bool progress = true;
  std::size_t proxy = 0; // > 0: after training, the compression-error proxy over this many draws
  std::string theory;    // the compression probe's CSV
  std::size_t theory_draws = 8;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(
      stderr,
      "torch_train: %s\noptions:\n%s"
      "  --master identity|same|SPEC --workers N --warmup EPOCHS --csv FILE --no-progress\n"
      "  --model cnn|resnet\n"
      "  --proxy DRAWS --theory FILE --theory-draws N\n",
      why.c_str(), ex::training_usage);
  std::exit(2);
}

config parse(int argc, char** argv) {
  config c;
  ex::arguments a(argc, argv, usage);
  while (a.next()) {
    if (ex::read_training_option(a, c.t))
      continue;
    if (a.is("--master"))
      c.master = a.value();
    else if (a.is("--model"))
      c.model = a.value();
    else if (a.is("--workers"))
      c.workers = a.count();
    else if (a.is("--warmup"))
      c.warmup = a.number();
    else if (a.is("--csv"))
      c.csv = a.value();
    else if (a.is("--no-progress"))
      c.progress = false;
    else if (a.is("--proxy"))
      c.proxy = a.count();
    else if (a.is("--theory"))
      c.theory = a.value();
    else if (a.is("--theory-draws"))
      c.theory_draws = a.count();
    else
      a.unknown();
  }
  if (const std::string why = ex::check_training_options(c.t); !why.empty())
    usage(why);
  if (c.master == "same" && !c.t.scheme.empty())
    usage("--master same takes Q_W from --method; with --scheme, give Q_M's spec");
  if (!c.theory.empty() && (!c.t.scheme.empty() || c.theory_draws == 0))
    usage("--theory probes --method's layer-wise and entire-model operators (not --scheme), "
          "with --theory-draws of at least 1");
  if (c.t.method == "powersgd" &&
      (!c.t.scheme.empty() || c.master != "identity" || !c.theory.empty() ||
       (c.t.granularity != "layer" && c.t.granularity != "flat")))
    usage("--method powersgd takes --rank, --granularity layer|flat and --feedback; no --scheme, "
          "--master or --theory");
  if (c.model != "cnn" && c.model != "resnet")
    usage("--model is cnn or resnet");
  if (c.workers == 0 || c.t.batch % c.workers != 0) {
    usage("--workers must be positive and divide --batch");
  }
  return c;
}

torch::Tensor images_of(const ex::image_set& s) {
  return torch::from_blob(const_cast<float*>(s.images.data()),
                          {static_cast<std::int64_t>(s.count), 1, 28, 28}, torch::kFloat32);
}
torch::Tensor labels_of(const ex::image_set& s) {
  return torch::from_blob(const_cast<std::uint8_t*>(s.labels.data()),
                          {static_cast<std::int64_t>(s.count)}, torch::kUInt8)
      .to(torch::kInt64);
}

double test_accuracy(ex::classifier& model, const torch::Tensor& x, const torch::Tensor& y) {
  torch::NoGradGuard no_grad;
  model.eval();
  std::int64_t right = 0;
  for (std::int64_t i = 0; i < x.size(0); i += 1000) {
    const auto n = std::min<std::int64_t>(1000, x.size(0) - i);
    right +=
        model.forward(x.narrow(0, i, n)).argmax(1).eq(y.narrow(0, i, n)).sum().item<std::int64_t>();
  }
  model.train();
  return static_cast<double>(right) / static_cast<double>(x.size(0));
}

/// E|Q(x) - x|^2 / |x|^2 over `draws` keys (one suffices for deterministic operators).
double relative_error(const std::string& spec, const model_layout& layout, std::span<const float> x,
                      std::size_t draws) {
  const ex::span_moments m = ex::compression_moments(spec, layout, x, draws, 7).back();
  return m.error / m.norm2;
}

/// The run's columns of both CSVs (the per-epoch one and the probe's), and their values.
constexpr const char* run_header = "method,granularity,ratio,threshold,levels,momentum,feedback,"
                                   "workers,seed,model,rank";
std::string run_columns(const config& c) {
  std::ostringstream o;
  o << (c.t.scheme.empty() ? c.t.method : '"' + c.t.scheme + '"') << ','
    << (c.t.scheme.empty() ? c.t.granularity : "spec") << ',' << c.t.ratio << ',' << c.t.threshold
    << ',' << c.t.levels << ',' << (c.t.nesterov ? c.t.momentum : -c.t.momentum) << ','
    << c.t.feedback << ',' << c.workers << ',' << c.t.seed << ',' << c.model << ','
    << (c.t.method == "powersgd" ? c.t.rank : 0);
  return o.str();
}

/// One row of the proxy: `spec` (an example spec, "/flat/" in it) layer-wise and entire-model.
void proxy_row(std::string spec, const model_layout& layout, std::span<const float> x,
               std::size_t draws) {
  const std::size_t at = spec.find("/flat/");
  const double em = relative_error(spec, layout, x, draws);
  const double lw = relative_error(std::string(spec).replace(at, 6, "/layer/"), layout, x, draws);
  const double rel = std::abs(lw - em) / std::max(lw, em);
  std::printf("| %-40s | %11.4e | %11.4e | %6.3f | %s |\n", spec.erase(at, 5).c_str(), lw, em,
              em > 0 ? lw / em : 1.0,
              rel < 1e-3 ? "equal"
              : lw < em  ? "layer-wise"
                         : "entire-model");
}

/// The no-training proxy (the mechanism behind the paper's findings): on a real gradient of this
/// model, the relative compression error of every registered scheme (runtime::example_specs()),
/// layer-wise vs entire-model, averaged over `draws` keys.
void compression_proxy(const model_layout& layout, std::span<const float> x, const config& c) {
  std::printf("\nrelative compression error E|Q(x)-x|^2/|x|^2 on a gradient of this model "
              "(%zu draws)\n\n",
              c.proxy);
  std::printf("| %-40s | layer-wise  | entire-model | LW/EM  | lower |\n|%s|-------------|------"
              "-------|--------|-------|\n",
              "scheme", std::string(42, '-').c_str());
  for (const std::string& spec : runtime::example_specs()) {
    proxy_row(spec, layout, x, c.proxy);
  }
}

/// PowerSGD among the simulated workers (gradcomp/lowrank/powersgd.hpp): each step, two rounds of
/// messages summed as an all-reduce would; every worker decodes the same mean estimate.
class powersgd_exchange {
public:
  powersgd_exchange(const model_layout& layout, const config& c) {
    const powersgd_options o{.rank = c.t.rank,
                             .entire_model = c.t.granularity == "flat",
                             .error_feedback = c.t.feedback,
                             .seed = c.t.seed};
    for (std::size_t w = 0; w < c.workers; ++w) {
      workers_.emplace_back(layout, o, static_cast<std::uint32_t>(w));
    }
    msgs_.resize(c.workers);
    scratch_.resize(layout.total_size());
  }
  [[nodiscard]] std::string name() const {
    const auto& o = workers_[0].options();
    return "powersgd rank " + std::to_string(o.rank) +
           (o.entire_model ? " entire-model" : " layer-wise") +
           (o.error_feedback ? " with error feedback" : "");
  }
  step_stats step(std::span<const std::span<const float>> grads, std::span<float> update) {
    step_stats st;
    std::vector<std::span<const std::byte>> views(workers_.size());
    auto round = [&](lowrank_round r, auto&& encode) {
      for (std::size_t w = 0; w < workers_.size(); ++w) {
        encode(workers_[w], msgs_[w]);
        views[w] = msgs_[w];
        st.bytes_up += msgs_[w].size();
      }
      workers_[0].sum(r, views, sum_);
      st.bytes_down += sum_.size() * workers_.size();
    };
    round(lowrank_round::p, [&](powersgd& w, auto& m) { w.encode_p(grads[w.worker_rank()], m); });
    round(lowrank_round::q, [&](powersgd& w, auto& m) { w.encode_q(sum_, m); });
    for (auto& w : workers_) {
      w.decode(sum_, w.worker_rank() == 0 ? update : std::span<float>(scratch_));
    }
    return st;
  }

private:
  std::vector<powersgd> workers_;
  std::vector<std::vector<std::byte>> msgs_;
  std::vector<std::byte> sum_;
  std::vector<float> scratch_;
};

/// Q_M's spec for --master.
std::string master_spec(const config& c) {
  if (c.master == "same") {
    return ex::method_spec(c.t, "flat");
  }
  return c.master;
}

int train(const config& c) {
  torch::manual_seed(c.t.seed);
  const auto train_set = ex::load_fashion_mnist(c.t.data, "train", c.t.train_limit);
  const auto test_set = ex::load_fashion_mnist(c.t.data, "t10k", c.t.test_limit);
  const torch::Tensor xtr = images_of(train_set), ytr = labels_of(train_set);
  const torch::Tensor xte = images_of(test_set), yte = labels_of(test_set);

  const std::shared_ptr<ex::classifier> net = ex::make_classifier(c.model);
  ex::classifier& model = *net;
  torch_bridge bridge(model, c.workers);
  using cluster_type = in_process_cluster<runtime_scheme, runtime_scheme>;
  std::unique_ptr<cluster_type> cluster;
  std::unique_ptr<powersgd_exchange> lowrank;
  std::string method_name;
  if (c.t.method == "powersgd") {
    lowrank = std::make_unique<powersgd_exchange>(bridge.layout(), c);
    method_name = lowrank->name();
  } else {
    const runtime_scheme q_w = ex::worker_scheme(c.t, bridge.layout());
    const runtime_scheme q_m{master_spec(c)};
    cluster = std::make_unique<cluster_type>(
        q_w, q_m, bridge.layout(), c.workers,
        cluster_type::options{c.t.seed, aggregation::mean, c.t.feedback, false, false, false});
    method_name = "Q_W " + q_w.spec + ", Q_M " + q_m.spec;
  }
  const std::size_t d = bridge.layout().total_size();
  std::vector<float> update(d), velocity(d, 0.0f);
  const std::size_t shard = c.t.batch / c.workers;
  std::size_t steps = train_set.count / c.t.batch;
  if (c.t.steps != 0) {
    steps = std::min(steps, c.t.steps);
  }
  const std::size_t total = steps * c.t.epochs;
  const auto warm =
      std::max<std::size_t>(1, static_cast<std::size_t>(c.warmup * static_cast<double>(steps)));
  std::ofstream csv;
  if (!c.csv.empty()) {
    const bool fresh = !std::ifstream(c.csv).good();
    csv.open(c.csv, std::ios::app);
    if (fresh) {
      csv << run_header
          << ",epoch,train_loss,test_accuracy,bytes_up_per_step,bytes_down_per_step,"
             "dense_bytes_per_step\n";
    }
  }
  std::unique_ptr<ex::compression_probe> probe;
  if (!c.theory.empty()) {
    probe = std::make_unique<ex::compression_probe>(c.theory, run_header);
  }
  std::printf("torch_train: %s, %zu workers, %zu parameters in %zu tensors, %zu steps/epoch\n",
              method_name.c_str(), c.workers, d, bridge.layout().num_layers(), steps);
  std::uint64_t step = 0;
  for (std::size_t epoch = 0; epoch < c.t.epochs; ++epoch) {
    std::vector<std::int64_t> order(train_set.count);
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(c.t.seed * 7919 + epoch);
    std::shuffle(order.begin(), order.end(), rng);
    const torch::Tensor perm =
        torch::from_blob(order.data(), {static_cast<std::int64_t>(order.size())}, torch::kInt64);
    double loss_sum = 0, up = 0, down = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t s = 0; s < steps; ++s, ++step) {
      std::vector<std::span<const float>> grads;
      double loss = 0;
      for (std::size_t w = 0; w < c.workers; ++w) {
        const auto idx = perm.narrow(0, static_cast<std::int64_t>(s * c.t.batch + w * shard),
                                     static_cast<std::int64_t>(shard));
        bridge.use_gradients(w);
        const torch::Tensor l = torch::nn::functional::cross_entropy(
            model.forward(xtr.index_select(0, idx)), ytr.index_select(0, idx));
        l.backward();
        bridge.check_gradients_in(w);
        loss += l.item<double>() / static_cast<double>(c.workers);
        grads.emplace_back(bridge.gradient(w));
      }
      const std::span<const std::span<const float>> g(grads);
      const step_stats st = lowrank ? lowrank->step(g, update)
                                    : cluster->step(cpu, g, step, 1.0f, std::span<float>(update));
      if (probe && (step == 0 || s + 1 == steps)) {
        probe->record(run_columns(c), epoch + 1, step, ex::method_spec(c.t, "layer"),
                      ex::method_spec(c.t, "flat"), bridge.layout(), grads[0], c.theory_draws);
      }
      up += static_cast<double>(st.bytes_up);
      down += static_cast<double>(st.bytes_down);
      loss_sum += loss;
      const double lr =
          step < warm
              ? c.t.lr * static_cast<double>(step + 1) / static_cast<double>(warm)
              : c.t.lr * static_cast<double>(total - step) / static_cast<double>(total - warm + 1);
      auto p = bridge.parameters();
      const auto m = static_cast<float>(c.t.momentum), a = static_cast<float>(lr);
      for (std::size_t i = 0; i < d; ++i) {
        velocity[i] = m * velocity[i] + update[i];
        p[i] -= a * (c.t.nesterov ? update[i] + m * velocity[i] : velocity[i]);
      }
      if (c.progress && (s % 10 == 0 || s + 1 == steps)) {
        const int width = 30, done = static_cast<int>(width * (s + 1) / steps);
        std::fprintf(stderr, "\repoch %zu [%.*s%*s] %zu/%zu loss %.4f", epoch + 1, done,
                     "##############################", width - done, "", s + 1, steps,
                     loss_sum / static_cast<double>(s + 1));
      }
    }
    if (c.progress) {
      std::fprintf(stderr, "\n");
    }
    const double acc = test_accuracy(model, xte, yte);
    const double n = static_cast<double>(steps);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("epoch %zu/%zu  train loss %.4f  test accuracy %.2f%%  up %.1f KB/step  down %.1f "
                "KB/step  (dense %.1f KB/step up)  %.1f s\n",
                epoch + 1, c.t.epochs, loss_sum / n, 100 * acc, up / n / 1e3, down / n / 1e3,
                4.0 * static_cast<double>(d * c.workers) / 1e3, secs);
    std::fflush(stdout);
    if (csv.is_open()) {
      csv << run_columns(c) << ',' << epoch + 1 << ',' << loss_sum / n << ',' << acc << ','
          << up / n << ',' << down / n << ',' << 4.0 * static_cast<double>(d * c.workers) << '\n';
    }
    if (!std::isfinite(loss_sum)) {
      std::printf("training diverged (loss is not finite)\n");
      return 3;
    }
  }
  if (c.proxy > 0) { // the gradient of one global batch at the trained point
    bridge.use_gradients(0);
    const auto idx = torch::arange(static_cast<std::int64_t>(c.t.batch), torch::kInt64);
    torch::nn::functional::cross_entropy(model.forward(xtr.index_select(0, idx)),
                                         ytr.index_select(0, idx))
        .backward();
    bridge.check_gradients_in(0);
    compression_proxy(bridge.layout(), bridge.gradient(0), c);
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  const config c = parse(argc, argv);
  torch::set_num_threads(1);
  try {
    return train(c);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "torch_train: %s\n", e.what());
    return 1;
  }
}
