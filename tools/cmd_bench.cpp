// `mriscan bench`: end-to-end speed figures a user cares about, measured on this machine, medians of repeats.
//   inference latency at batch 1, inference throughput at batch N, training step throughput (forward + backward +
//   AdamW) at batch N, and fine-tuning throughput with the first blocks frozen. `--profile` adds time per op (for
//   fine-tuning, the untaped folded prefix as one line, "folded_prefix").
// Inference runs as in deployment: on a FoldedMobileNetV2 snapshot (BN folded, ReLU6 fused, no tape), built once
// outside the timed runs; its `--profile` times the taped, unfused eval forward per op (the folded one has no tape).
// The PyTorch peer for the same workloads is bench/compare_pytorch.py, which runs this command too.
// What it is not: the kernel micro-benchmarks (bench/*.cpp, Google Benchmark) or a test of correctness.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>

#include <nlohmann/json.hpp>

#include "engine/kernels/cpu_features.h"
#include "engine/kernels/dispatch.h"
#include "engine/kernels/matmul_precision.h"
#include "engine/parallel.h"
#include "layers/softmax_cross_entropy.h"
#include "models/folded_mobilenet_v2.h"
#include "models/mobilenet_v2.h"
#include "optim/adam.h"
#include "tools/command.h"
#include "tools/command_line.h"

namespace mriscan {
namespace {

const char* kSynopsis = R"(usage: mriscan bench [options]

Times the whole network on random inputs: inference at batch 1 and batch N, a training step and a fine-tuning
step, medians of the repeats.
)";

struct BenchOptions {
  int threads = num_threads();  // the engine's default: all cores
  std::string precision = "fp32";
  int batch = 32;
  int image_size = 224;
  double width = 1.0;
  int repeats = 5;
  int frozen_blocks = 13;
  std::string workloads = "infer1,infer,train,finetune";
  bool profile = false;
  bool json = false;

  bool wanted(const std::string& workload) const {
    return ("," + workloads + ",").find("," + workload + ",") != std::string::npos;
  }
};

void add_options(CommandLine& cli, BenchOptions& o) {
  cli.add_option("--threads", o.threads, "kernel threads (all cores)")->type_name("N");
  cli.add_option("--precision", o.precision, "fp32 | bf16: the GEMMs' precision (fp32; bf16 needs AVX512-BF16)")
      ->type_name("NAME");
  cli.add_option("--batch", o.batch, "batch size of the batched workloads (32)")->type_name("N");
  cli.add_option("--image-size", o.image_size, "input resolution (224)")->type_name("N");
  cli.add_option("--width", o.width, "width multiplier (1.0)")->type_name("W");
  cli.add_option("--repeats", o.repeats, "timed repeats per workload (5)")->type_name("N");
  cli.add_option("--frozen-blocks", o.frozen_blocks, "blocks frozen in the fine-tuning workload (13)")
      ->type_name("K");
  cli.add_option("--workloads", o.workloads, "comma-separated subset of infer1,infer,train,finetune (all)")
      ->type_name("LIST");
  cli.add_flag("--profile", o.profile,
               "also time each op: forward/backward of train and finetune (its folded prefix as one line),"
               " forward of the taped network for inference");
  cli.add_flag("--json", o.json, "print the results as one JSON document on stdout");
}

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

// The taped, unfused eval forward timed per op (the folded network has no tape to profile).
nlohmann::json profile_unfused_forward(MobileNetV2& model, const Var& images) {
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
  return report_profile(op_profile, "op (one unfused forward)", wall_ms);
}

// Inference as in deployment: a FoldedMobileNetV2 snapshot (BN folded, ReLU6 fused, no tape), built once outside
// the timed runs, on `n` images. Batch 1 gets at least 20 repeats (its runs are short and noisy).
nlohmann::json bench_inference(MobileNetV2& model, const BenchOptions& o, int n, const std::string& key) {
  model.set_training(false);
  const FoldedMobileNetV2 folded(model);
  const Var images = make_var(random_images(n, o.image_size));
  const std::vector<double> ms =
      time_runs_ms(2, n == 1 ? std::max(o.repeats, 20) : o.repeats, [&] { folded.forward(images->value); });
  const double median_ms = median(ms);
  nlohmann::json result = {{"median_ms", median_ms}, {"images_per_second", 1e3 * n / median_ms}, {"runs_ms", ms}};
  std::fprintf(stderr, "%-10s batch %3d: %8.2f ms  %8.1f img/s\n", key.c_str(), n, median_ms, 1e3 * n / median_ms);
  if (o.profile) result["profile"] = profile_unfused_forward(model, images);
  return result;
}

// Freezes the first `frozen_blocks` blocks, puts the model in training mode, and lists what still trains.
std::vector<NamedParameter> trainable_after_freezing(MobileNetV2& model, int frozen_blocks) {
  model.freeze_blocks(frozen_blocks);
  model.set_training(true);
  std::vector<NamedParameter> trainable;
  for (const NamedParameter& p : model.parameters())
    if (p.var->requires_grad) trainable.push_back(p);
  return trainable;
}

// One training step on random images as the trainer runs it (train/trainer.cpp): the frozen prefix folded and
// untaped, the rest on the tape, backward, AdamW. The tape times its ops into op_profile() only while it is given
// it (profile_training_step); the untaped prefix adds its own line, "folded_prefix", on every step, so that it is
// not billed to the first taped op. The model's blocks are unfrozen again when the step is destroyed.
class TrainingStep {
 public:
  TrainingStep(MobileNetV2& model, int frozen_blocks, int batch, int image_size)
      : model_(model),
        frozen_blocks_(frozen_blocks),
        trainable_(trainable_after_freezing(model, frozen_blocks)),
        adam_(trainable_, {.learning_rate = 1e-4f, .weight_decay = 1e-4f, .decoupled_weight_decay = true}),
        images_(random_images(batch, image_size)),
        labels_(batch) {
    if (frozen_blocks > 0) prefix_.emplace(model);
    for (int i = 0; i < batch; ++i) labels_[i] = i % 4;
  }
  ~TrainingStep() { model_.freeze_blocks(0); }

  void run() {
    tape_.clear();
    op_profile_.start();
    Var loss = softmax_cross_entropy(tape_, forward(), labels_);
    for (const NamedParameter& p : trainable_) p.var->grad = Tensor();
    tape_.backward(loss);
    adam_.step();
  }
  Tape& tape() { return tape_; }
  OpProfile& op_profile() { return op_profile_; }

 private:
  Var forward() {
    if (!prefix_) return model_.forward(tape_, make_var(images_));
    const auto start = std::chrono::steady_clock::now();
    Var input = make_var(prefix_->forward_blocks(images_, 0, frozen_blocks_));
    op_profile_.forward_seconds["folded_prefix"] +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    op_profile_.calls["folded_prefix"] += 1;
    op_profile_.start();
    return model_.forward_head(tape_, model_.forward_blocks(tape_, input, frozen_blocks_, MobileNetV2::kNumBlocks));
  }

  MobileNetV2& model_;
  const int frozen_blocks_;
  std::vector<NamedParameter> trainable_;
  Adam adam_;
  const Tensor images_;
  std::vector<int> labels_;
  std::optional<FoldedMobileNetV2> prefix_;
  Tape tape_;
  OpProfile op_profile_;
};

// Per-op times of one more step, recorded from a fresh profile (what the timed steps added is discarded).
nlohmann::json profile_training_step(TrainingStep& step) {
  step.tape().set_profile(&step.op_profile());
  step.op_profile() = OpProfile();
  const double wall_ms = time_runs_ms(0, 1, [&] { step.run(); })[0];
  step.tape().set_profile(nullptr);
  return report_profile(step.op_profile(), "op (one train step)", wall_ms);
}

// The training step (frozen_blocks 0) or the fine-tuning step (the first frozen_blocks blocks frozen) at --batch.
nlohmann::json bench_training(MobileNetV2& model, const BenchOptions& o, int frozen_blocks, const std::string& key) {
  TrainingStep step(model, frozen_blocks, o.batch, o.image_size);
  const std::vector<double> ms = time_runs_ms(1, o.repeats, [&] { step.run(); });
  const double median_ms = median(ms);
  nlohmann::json result = {{"median_ms", median_ms}, {"images_per_second", 1e3 * o.batch / median_ms},
                           {"frozen_blocks", frozen_blocks}, {"runs_ms", ms}, {"peak_rss_mb", peak_rss_mb()}};
  std::fprintf(stderr, "%-10s batch %3d: %8.2f ms  %8.1f img/s  (frozen %d, peak RSS %.0f MB)\n", key.c_str(),
               o.batch, median_ms, 1e3 * o.batch / median_ms, frozen_blocks, peak_rss_mb());
  if (o.profile) result["profile"] = profile_training_step(step);
  return result;
}

int run_bench(const std::vector<std::string>& args) {
  BenchOptions o;
  CommandLine cli(kSynopsis);
  add_options(cli, o);
  if (cli.parse_arguments(args) == Parsed::help_printed) return 0;
  set_num_threads(o.threads);  // the engine's one knob (engine/parallel.h); every kernel pragma reads it
  set_matmul_precision(parse_matmul_precision(o.precision));
  o.repeats = std::max(1, o.repeats);
  const float width = static_cast<float>(o.width);

  nlohmann::json result = {{"threads", o.threads}, {"batch", o.batch}, {"image_size", o.image_size},
                           {"width_mult", width}, {"repeats", o.repeats}, {"kernels", kernels().name},
                           {"isa", fast_kernels().name}, {"cpu", cpu_features().model_name},
                           {"precision", matmul_precision_name(matmul_precision())}};
  MobileNetV2 model({.width_mult = width, .num_classes = 4, .seed = 0});
  std::fprintf(stderr, "mriscan bench: %s, %d threads, %dx%d, width %.2f, kernels '%s', %s GEMMs\n",
               cpu_features().model_name.c_str(), o.threads, o.image_size, o.image_size, width, kernels().name.c_str(),
               matmul_precision_name(matmul_precision()));
  if (o.wanted("infer1")) result["infer1"] = bench_inference(model, o, 1, "infer1");
  if (o.wanted("infer")) result["infer"] = bench_inference(model, o, o.batch, "infer");
  if (o.wanted("train")) result["train"] = bench_training(model, o, 0, "train");
  if (o.wanted("finetune")) result["finetune"] = bench_training(model, o, o.frozen_blocks, "finetune");
  if (o.json) std::cout << result.dump(2) << "\n";
  return 0;
}

const RegisterCommand kRegister({"bench", "measure inference and training speed on this machine", run_bench});

}  // namespace
}  // namespace mriscan
