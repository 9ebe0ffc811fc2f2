// Google Benchmark for the kernels on MobileNetV2's real shapes (bench/mobilenet_v2_shapes.h): the reference and
// fast tables side by side, forward and both backward directions, with FLOP/s and bytes/s counters.
//   build/mriscan_bench --benchmark_filter=Depthwise     (batch: MRISCAN_BENCH_BATCH, default 8)
// Bytes count the minimum traffic (each input, weight and output touched once), so bytes/s against the machine's
// memory bandwidth says how close a memory-bound kernel (depthwise) is to its limit.
// DepthwiseBnReLU6 / PointwiseBnReLU6 time one conv + eval-mode BN + ReLU6 forward both ways: unfused, as the taped
// network runs it (conv, channel_affine_forward, relu6_forward: three passes over the output), and fused, as
// models/folded_conv.h runs it (one kernel: BN folded into the weights and bias, ReLU6 in the epilogue).
// BatchNormTrain / BatchNormTrainBackward time batch norm's training forward and fused BN + ReLU6 backward.
// Stem times the first, dense 3x3 stride-2 conv (3 -> 32 channels).
// FmaPeak measures the machine's fused multiply-add throughput for each table's instruction set (FLOPS on
// OMP_NUM_THREADS threads, engine/kernels/fma_peak.h), the ceiling that bench/compare_pytorch.py reports each
// pointwise GEMM against. The fast table is the process's (the CPU's highest kernel set, or MRISCAN_ISA's); every
// benchmark name ends in its table's name.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "bench/mobilenet_v2_shapes.h"
#include "engine/kernels/dispatch.h"
#include "engine/kernels/fma_peak.h"
#include "engine/kernels/matmul_precision.h"
#include "engine/parallel.h"

namespace mriscan {
namespace {

int bench_batch() {
  const char* value = std::getenv("MRISCAN_BENCH_BATCH");
  return value ? std::atoi(value) : 8;
}

std::vector<float> random_buffer(size_t n) {
  std::vector<float> v(n);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& x : v) x = dist(rng);
  return v;
}

void set_counters(benchmark::State& state, double flops, double bytes) {
  state.counters["FLOPS"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["bytes_per_second"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate);
}

enum class Direction { kForward, kBackwardInput, kBackwardWeight };
const char* direction_name(Direction d) {
  return d == Direction::kForward ? "forward" : d == Direction::kBackwardInput ? "backward_input" : "backward_weight";
}

// A 3x3, pad 1 depthwise layer of this shape, at the benchmark batch.
DepthwiseParams depthwise_params(const shapes::DepthwiseShape& shape) {
  return shapes::depthwise_params(shape, bench_batch());
}

void depthwise(benchmark::State& state, const KernelTable* table, shapes::DepthwiseShape shape, Direction direction) {
  DepthwiseParams p = depthwise_params(shape);
  const size_t in = size_t(p.batch) * p.in_h * p.in_w * p.channels,
               out = size_t(p.batch) * p.out_h * p.out_w * p.channels;
  std::vector<float> x = random_buffer(in), w = random_buffer(9 * p.channels), y = random_buffer(out);
  std::vector<float> dx(in), dw(9 * p.channels), db(p.channels);
  for (auto _ : state) {
    if (direction == Direction::kForward) table->depthwise_forward(p, x.data(), w.data(), nullptr, y.data());
    if (direction == Direction::kBackwardInput) table->depthwise_backward_input(p, y.data(), w.data(), dx.data());
    if (direction == Direction::kBackwardWeight)
      table->depthwise_backward_weight(p, x.data(), y.data(), dw.data(), db.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, 2.0 * 9 * out, 4.0 * (in + out + 9 * p.channels));
}

// The stem: a dense 3x3 stride-2 pad-1 conv, 224x224x3 -> 112x112x32, at the benchmark batch.
void stem(benchmark::State& state, const KernelTable* table, Direction direction) {
  const Conv2dParams p{.batch = bench_batch(), .in_h = 224, .in_w = 224, .in_c = 3, .out_h = 112, .out_w = 112,
                       .out_c = 32, .kernel_h = 3, .kernel_w = 3, .stride = 2, .pad = 1};
  const size_t in = size_t(p.batch) * 224 * 224 * 3, out = size_t(p.batch) * 112 * 112 * 32, weights = 27 * 32;
  std::vector<float> x = random_buffer(in), w = random_buffer(weights), y = random_buffer(out);
  std::vector<float> dx(in), dw(weights), db(32);
  for (auto _ : state) {
    if (direction == Direction::kForward) table->conv2d_forward(p, x.data(), w.data(), db.data(), y.data());
    if (direction == Direction::kBackwardInput) table->conv2d_backward_input(p, y.data(), w.data(), dx.data());
    if (direction == Direction::kBackwardWeight)
      table->conv2d_backward_weight(p, x.data(), y.data(), dw.data(), db.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, 2.0 * 27 * out, 4.0 * (in + out + weights));
}

void pointwise(benchmark::State& state, const KernelTable* table, shapes::PointwiseShape shape, Direction direction) {
  const int m = bench_batch() * shape.h * shape.w, ci = shape.in_channels, co = shape.out_channels;
  std::vector<float> x = random_buffer(size_t(m) * ci), w = random_buffer(size_t(ci) * co),
                     y = random_buffer(size_t(m) * co);
  for (auto _ : state) {
    if (direction == Direction::kForward)  // y (m, co) = x (m, ci) . w (ci, co)
      table->gemm({.m = m, .n = co, .k = ci}, x.data(), w.data(), y.data());
    if (direction == Direction::kBackwardInput)  // dx (m, ci) += dy (m, co) . w^T
      table->gemm({.m = m, .n = ci, .k = co, .trans_b = true, .accumulate = true}, y.data(), w.data(), x.data());
    if (direction == Direction::kBackwardWeight)  // dw (ci, co) += x^T . dy
      table->gemm({.m = ci, .n = co, .k = m, .trans_a = true, .accumulate = true}, x.data(), y.data(), w.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, 2.0 * m * ci * co, 4.0 * (size_t(m) * ci + size_t(m) * co + size_t(ci) * co));
}

// The same products with bf16 inputs and fp32 sums (engine/kernels/matmul_precision.h).
void pointwise_bf16(benchmark::State& state, shapes::PointwiseShape shape, Direction direction) {
  set_thread_matmul_precision(MatmulPrecision::kBFloat16);
  pointwise(state, &fast_kernels(), shape, direction);
  set_thread_matmul_precision(std::nullopt);
}

enum class Fusion { kUnfused, kFused };
const char* fusion_name(Fusion f) { return f == Fusion::kFused ? "fused" : "unfused"; }

void depthwise_bn_relu6(benchmark::State& state, const KernelTable* table, shapes::DepthwiseShape shape,
                        Fusion fusion) {
  DepthwiseParams p = depthwise_params(shape);
  const int64_t rows = int64_t(p.batch) * p.out_h * p.out_w;  // output pixels
  const size_t in = size_t(p.batch) * p.in_h * p.in_w * p.channels, out = size_t(rows) * p.channels;
  std::vector<float> x = random_buffer(in), w = random_buffer(9 * p.channels), y(out), z(out);
  std::vector<float> scale = random_buffer(p.channels), shift = random_buffer(p.channels);
  if (fusion == Fusion::kFused) p.activation = Activation::kReLU6;
  for (auto _ : state) {
    if (fusion == Fusion::kFused) {
      table->depthwise_forward(p, x.data(), w.data(), shift.data(), y.data());
    } else {
      table->depthwise_forward(p, x.data(), w.data(), nullptr, y.data());
      table->channel_affine_forward(rows, p.channels, y.data(), scale.data(), shift.data(), z.data());
      table->relu6_forward(int64_t(out), z.data(), y.data());
    }
    benchmark::ClobberMemory();
  }
  set_counters(state, 2.0 * 9 * out, 4.0 * (in + out + 9 * p.channels));
}

void pointwise_bn_relu6(benchmark::State& state, const KernelTable* table, shapes::PointwiseShape shape,
                        Fusion fusion) {
  const int m = bench_batch() * shape.h * shape.w, ci = shape.in_channels, co = shape.out_channels;
  std::vector<float> x = random_buffer(size_t(m) * ci), w = random_buffer(size_t(ci) * co);
  std::vector<float> y(size_t(m) * co), z(size_t(m) * co), scale = random_buffer(co), shift = random_buffer(co);
  for (auto _ : state) {
    if (fusion == Fusion::kFused) {
      table->gemm_bias_act({.m = m, .n = co, .k = ci}, x.data(), w.data(), shift.data(), Activation::kReLU6, y.data());
    } else {
      table->gemm({.m = m, .n = co, .k = ci}, x.data(), w.data(), y.data());
      table->channel_affine_forward(m, co, y.data(), scale.data(), shift.data(), z.data());
      table->relu6_forward(int64_t(m) * co, z.data(), y.data());
    }
    benchmark::ClobberMemory();
  }
  set_counters(state, 2.0 * m * ci * co, 4.0 * (size_t(m) * ci + size_t(m) * co + size_t(ci) * co));
}

void batchnorm_train(benchmark::State& state, const KernelTable* table, shapes::DepthwiseShape shape) {
  BatchNormParams p{.rows = int64_t(bench_batch()) * shape.h * shape.w, .channels = shape.channels};
  const size_t n = size_t(p.rows) * p.channels;
  std::vector<float> x = random_buffer(n), y(n), gamma = random_buffer(p.channels), beta = random_buffer(p.channels);
  std::vector<float> mean(p.channels), inv_std(p.channels);
  for (auto _ : state) {
    table->batchnorm_train_forward(p, x.data(), gamma.data(), beta.data(), y.data(), mean.data(), inv_std.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, 6.0 * n, 4.0 * 3 * n);  // two reads of x (statistics, normalisation), one write of y
}

// The fused BN + ReLU6 backward as training runs it: the sums pass, then dx stored (the first gradient of x).
void batchnorm_train_backward(benchmark::State& state, const KernelTable* table, shapes::DepthwiseShape shape) {
  BatchNormParams p{.rows = int64_t(bench_batch()) * shape.h * shape.w, .channels = shape.channels,
                    .activation = Activation::kReLU6, .accumulate_dx = false};
  const size_t n = size_t(p.rows) * p.channels;
  std::vector<float> x = random_buffer(n), dy = random_buffer(n), dx(n), gamma = random_buffer(p.channels),
                     beta = random_buffer(p.channels);
  std::vector<float> mean(p.channels), inv_std(p.channels), dgamma(p.channels), dbeta(p.channels);
  table->batchnorm_train_forward(p, x.data(), gamma.data(), beta.data(), dx.data(), mean.data(), inv_std.data());
  for (auto _ : state) {
    table->batchnorm_train_backward(p, dy.data(), x.data(), gamma.data(), beta.data(), mean.data(), inv_std.data(),
                                    dx.data(), dgamma.data(), dbeta.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, 14.0 * n, 4.0 * 5 * n);  // dy and x read twice (sums, input pass), dx written once
}

// The table's FMA probe on every thread: bound by FMA throughput alone (engine/kernels/fma_peak.h).
void fma_peak(benchmark::State& state, const KernelTable* table) {
  constexpr int64_t kSteps = 1 << 16;
  const int threads = num_threads();
  float sink = 0.0f;
  for (auto _ : state) {
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += table->fma_probe(kSteps);
    benchmark::DoNotOptimize(sink);
  }
  state.counters["FLOPS"] =
      benchmark::Counter(fma_probe_flops(*table, kSteps) * threads, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = threads;
}

void register_all() {
  for (const KernelTable* table : {&reference_kernels(), &fast_kernels()}) {
    benchmark::RegisterBenchmark(("FmaPeak/" + table->name).c_str(), fma_peak, table)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    for (Direction d : {Direction::kForward, Direction::kBackwardInput, Direction::kBackwardWeight})
      benchmark::RegisterBenchmark(("Stem/" + std::string(direction_name(d)) + "/" + table->name).c_str(), stem,
                                   table, d)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    for (const auto& shape : shapes::kDepthwise)
      for (Direction d : {Direction::kForward, Direction::kBackwardInput, Direction::kBackwardWeight})
        benchmark::RegisterBenchmark(
            ("Depthwise/" + std::string(direction_name(d)) + "/" + shape.name + "/" + table->name).c_str(), depthwise,
            table, shape, d)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
    for (const auto& shape : shapes::kPointwise)
      for (Direction d : {Direction::kForward, Direction::kBackwardInput, Direction::kBackwardWeight})
        benchmark::RegisterBenchmark(
            ("Pointwise/" + std::string(direction_name(d)) + "/" + shape.name + "/" + table->name).c_str(), pointwise,
            table, shape, d)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
    for (const auto& shape : shapes::kPointwise)
      for (Direction d : {Direction::kForward, Direction::kBackwardInput, Direction::kBackwardWeight})
        if (table == &fast_kernels() && bf16_matmul_supported())
          benchmark::RegisterBenchmark(
              ("PointwiseBf16/" + std::string(direction_name(d)) + "/" + shape.name + "/" + table->name).c_str(),
              pointwise_bf16, shape, d)
              ->Unit(benchmark::kMillisecond)
              ->UseRealTime();
    for (Fusion f : {Fusion::kUnfused, Fusion::kFused}) {
      for (const auto& shape : shapes::kDepthwise)
        benchmark::RegisterBenchmark(
            ("DepthwiseBnReLU6/" + std::string(fusion_name(f)) + "/" + shape.name + "/" + table->name).c_str(),
            depthwise_bn_relu6, table, shape, f)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      for (const auto& shape : shapes::kPointwise)
        benchmark::RegisterBenchmark(
            ("PointwiseBnReLU6/" + std::string(fusion_name(f)) + "/" + shape.name + "/" + table->name).c_str(),
            pointwise_bn_relu6, table, shape, f)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
    }
    for (const auto& shape : shapes::kDepthwise)
      benchmark::RegisterBenchmark(("BatchNormTrain/" + std::string(shape.name) + "/" + table->name).c_str(),
                                   batchnorm_train, table, shape)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    for (const auto& shape : shapes::kDepthwise)
      benchmark::RegisterBenchmark(("BatchNormTrainBackward/" + std::string(shape.name) + "/" + table->name).c_str(),
                                   batchnorm_train_backward, table, shape)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
  }
}

}  // namespace
}  // namespace mriscan

int main(int argc, char** argv) {
  mriscan::register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
