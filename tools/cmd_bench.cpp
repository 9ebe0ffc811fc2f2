// `mriscan bench`: end-to-end speed figures a user cares about, measured on this machine, medians of repeats.
//   inference latency at batch 1, inference throughput at batch N, training step throughput (forward + backward +
//   AdamW) at batch N, and fine-tuning throughput with the first blocks frozen. `--profile` adds time per op (for
//   fine-tuning, the untaped folded prefix as one line, "folded_prefix").
// Inference runs as in deployment: on a FoldedMobileNetV2 snapshot (BN folded, ReLU6 fused, no tape), built once
// outside the timed runs; its `--profile` times the taped, unfused eval forward per op (the folded one has no tape).
// The PyTorch peer for the same workloads is bench/compare_pytorch.py, which runs this command too.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>

#include <nlohmann/json.hpp>

#include "engine/kernels/dispatch.h"
#include "engine/kernels/matmul_precision.h"
#include "engine/parallel.h"
#include "layers/softmax_cross_entropy.h"
#include "models/folded_mobilenet_v2.h"
#include "models/mobilenet_v2.h"
#include "optim/adam.h"
#include "tools/args.h"
#include "tools/command.h"

namespace mriscan {
namespace {

const char* kSynopsis = R"(usage: mriscan bench [options]

Times the whole network on random inputs: inference at batch 1 and batch N, a training step and a fine-tuning
step, medians of the repeats.
)";

const std::vector<Option> kOptions = {
    {"threads", "N", "kernel threads (all cores)"},
    {"precision", "NAME", "fp32 | bf16: the GEMMs' precision (fp32; bf16 needs AVX512-BF16)"},
    {"batch", "N", "batch size of the batched workloads (32)"},
    {"image-size", "N", "input resolution (224)"},
    {"width", "W", "width multiplier (1.0)"},
    {"repeats", "N", "timed repeats per workload (5)"},
    {"frozen-blocks", "K", "blocks frozen in the fine-tuning workload (13)"},
    {"workloads", "LIST", "comma-separated subset of infer1,infer,train,finetune (all)"},
    {"profile", "", "also time each op: forward/backward of train and finetune (its folded prefix as one line),"
                    " forward of the taped network for inference"},
    {"json", "", "print the results as one JSON document on stdout"},
};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

// Peak resident memory of the process so far, from /proc (kB -> MB).
double peak_rss_mb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0.0;
}

Tensor random_images(int batch, int size) {
  Tensor images(Shape{batch, size, size, 3});
  std::mt19937 rng(0);
  std::normal_distribution<float> normal;
  for (int64_t i = 0; i < images.numel(); ++i) images[i] = normal(rng);
  return images;
}

// Prints and returns time per op name of one profiled run, and how much of the run's wall time (wall_ms) the ops
// account for: the rest is outside any op (the optimiser, zeroing gradients, the tape's own bookkeeping).
nlohmann::json report_profile(const OpProfile& profile, const char* title, double wall_ms) {
  nlohmann::json ops;
  double ops_ms = 0.0;
  std::fprintf(stderr, "  %-24s %10s %10s %6s\n", title, "fwd ms", "bwd ms", "calls");
  for (const auto& [name, fwd] : profile.forward_seconds) {
    auto found = profile.backward_seconds.find(name);
    const double bwd = found == profile.backward_seconds.end() ? 0.0 : found->second;
    ops[name] = {{"forward_ms", 1e3 * fwd}, {"backward_ms", 1e3 * bwd}, {"calls", profile.calls.at(name)}};
    std::fprintf(stderr, "  %-24s %10.2f %10.2f %6lld\n", name.c_str(), 1e3 * fwd, 1e3 * bwd,
                 static_cast<long long>(profile.calls.at(name)));
    ops_ms += 1e3 * (fwd + bwd);
  }
  std::fprintf(stderr, "  ops: %.1f ms of the profiled run's %.1f ms wall\n", ops_ms, wall_ms);
  return {{"ops", ops}, {"ops_ms", ops_ms}, {"wall_ms", wall_ms}};
}

// Wall time of each of `repeats` runs after `warmup` untimed ones, in milliseconds.
template <typename F>
std::vector<double> time_runs_ms(int warmup, int repeats, F&& run) {
  for (int i = 0; i < warmup; ++i) run();
  std::vector<double> ms;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    run();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  return ms;
}

int run_bench(const std::vector<std::string>& raw) {
  Args args(raw, kOptions);
  if (args.help()) {
    std::cout << usage_text(kSynopsis, kOptions);
    return 0;
  }
  const int threads = args.get_int("threads", num_threads());
  set_num_threads(threads);  // the engine's one knob (engine/parallel.h); every kernel pragma reads it
  set_matmul_precision(parse_matmul_precision(args.get("precision", "fp32")));
  const int batch = args.get_int("batch", 32), size = args.get_int("image-size", 224);
  const int repeats = std::max(1, args.get_int("repeats", 5)), frozen = args.get_int("frozen-blocks", 13);
  const float width = static_cast<float>(args.get_double("width", 1.0));
  const std::string workloads = "," + args.get("workloads", "infer1,infer,train,finetune") + ",";
  auto wanted = [&](const std::string& name) { return workloads.find("," + name + ",") != std::string::npos; };

  nlohmann::json result = {{"threads", threads}, {"batch", batch}, {"image_size", size}, {"width_mult", width},
                           {"repeats", repeats}, {"kernels", kernels().name},
                           {"precision", matmul_precision_name(matmul_precision())}};
  MobileNetV2 model({.width_mult = width, .num_classes = 4, .seed = 0});

  auto inference = [&](int n, const std::string& key) {
    model.set_training(false);
    const FoldedMobileNetV2 folded(model);
    Var images = make_var(random_images(n, size));
    const std::vector<double> ms =
        time_runs_ms(2, n == 1 ? std::max(repeats, 20) : repeats, [&] { folded.forward(images->value); });
    const double median_ms = median(ms);
    result[key] = {{"median_ms", median_ms}, {"images_per_second", 1e3 * n / median_ms}, {"runs_ms", ms}};
    std::fprintf(stderr, "%-10s batch %3d: %8.2f ms  %8.1f img/s\n", key.c_str(), n, median_ms, 1e3 * n / median_ms);
    if (args.flag("profile")) {
      OpProfile op_profile;
      Tape tape;
      tape.set_enabled(false);
      model.forward(tape, images);  // untimed: its fresh buffers' first-touch page faults are no op's cost
      tape.set_profile(&op_profile);
      const double wall_ms = time_runs_ms(0, 1, [&] {
        op_profile.start();
        model.forward(tape, images);
      })[0];
      tape.set_profile(nullptr);
      result[key]["profile"] = report_profile(op_profile, "op (one unfused forward)", wall_ms);
    }
  };
  auto training = [&](int frozen_blocks, const std::string& key, bool profile) {
    model.freeze_blocks(frozen_blocks);
    model.set_training(true);
    std::vector<NamedParameter> trainable;
    for (const NamedParameter& p : model.parameters())
      if (p.var->requires_grad) trainable.push_back(p);
    Adam adam(trainable, {.learning_rate = 1e-4f, .weight_decay = 1e-4f, .decoupled_weight_decay = true});
    const Tensor images = random_images(batch, size);
    // As the trainer does (train/trainer.cpp): the frozen prefix runs folded and untaped, the rest on the tape.
    std::optional<FoldedMobileNetV2> prefix;
    if (frozen_blocks > 0) prefix.emplace(model);
    OpProfile op_profile;  // reset before the profiled step, so what the timed steps add here is discarded
    auto forward = [&](Tape& tape) {
      if (!prefix) return model.forward(tape, make_var(images));
      const auto start = std::chrono::steady_clock::now();
      Var input = make_var(prefix->forward_blocks(images, 0, frozen_blocks));
      // Untaped: its own line, and not billed to the first taped op.
      op_profile.forward_seconds["folded_prefix"] +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      op_profile.calls["folded_prefix"] += 1;
      op_profile.start();
      return model.forward_head(tape, model.forward_blocks(tape, input, frozen_blocks, MobileNetV2::kNumBlocks));
    };
    std::vector<int> labels(batch);
    for (int i = 0; i < batch; ++i) labels[i] = i % 4;
    Tape tape;
    auto step = [&] {
      tape.clear();
      op_profile.start();
      Var loss = softmax_cross_entropy(tape, forward(tape), labels);
      for (const NamedParameter& p : trainable) p.var->grad = Tensor();
      tape.backward(loss);
      adam.step();
    };
    const std::vector<double> ms = time_runs_ms(1, repeats, step);
    const double median_ms = median(ms);
    result[key] = {{"median_ms", median_ms}, {"images_per_second", 1e3 * batch / median_ms},
                   {"frozen_blocks", frozen_blocks}, {"runs_ms", ms}, {"peak_rss_mb", peak_rss_mb()}};
    std::fprintf(stderr, "%-10s batch %3d: %8.2f ms  %8.1f img/s  (frozen %d, peak RSS %.0f MB)\n", key.c_str(),
                 batch, median_ms, 1e3 * batch / median_ms, frozen_blocks, peak_rss_mb());
    if (profile) {
      tape.set_profile(&op_profile);
      op_profile = OpProfile();
      const double wall_ms = time_runs_ms(0, 1, step)[0];
      tape.set_profile(nullptr);
      result[key]["profile"] = report_profile(op_profile, "op (one train step)", wall_ms);
    }
    model.freeze_blocks(0);
  };

  std::fprintf(stderr, "mriscan bench: %d threads, %dx%d, width %.2f, kernels '%s', %s GEMMs\n", threads, size, size,
               width, kernels().name.c_str(), matmul_precision_name(matmul_precision()));
  if (wanted("infer1")) inference(1, "infer1");
  if (wanted("infer")) inference(batch, "infer");
  if (wanted("train")) training(0, "train", args.flag("profile"));
  if (wanted("finetune")) training(frozen, "finetune", args.flag("profile"));
  if (args.flag("json")) std::cout << result.dump(2) << "\n";
  return 0;
}

const RegisterCommand kRegister({"bench", "measure inference and training speed on this machine", run_bench});

}  // namespace
}  // namespace mriscan
