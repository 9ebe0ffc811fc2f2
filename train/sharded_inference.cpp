// Sharded inference and the gather of its outputs (see the header).
#include "train/sharded_inference.h"

#include <algorithm>
#include <unordered_map>

#include "data/data_loader.h"

namespace mriscan {

namespace {

// Rows of every process (local: (n_r, width), or undefined when this process answered nothing), concatenated
// in rank order into (rows, width).
Tensor gather_rows(Collective& world, const Tensor& local, int64_t rows) {
  std::vector<float> values;
  if (local.defined()) values.assign(local.data(), local.data() + local.numel());
  const std::vector<float> all = world.allgather(values);
  const int64_t width = rows > 0 ? static_cast<int64_t>(all.size()) / rows : 0;
  Tensor out = Tensor::uninitialized(Shape{rows, width});
  std::copy(all.begin(), all.end(), out.data());
  return out;
}

}  // namespace

InferenceOutput run_inference_sharded(Collective& world, MobileNetV2& model, const std::vector<Sample>& samples,
                                      int image_size, int batch_size) {
  if (world.size() == 1) return run_inference(model, samples, image_size, batch_size);
  const size_t n = samples.size();
  const PositionRange mine = shard_range(n, world.rank(), world.size());
  const std::vector<Sample> shard(samples.begin() + mine.begin, samples.begin() + mine.end);
  InferenceOutput local = run_inference(model, shard, image_size, batch_size);
  // Which samples this process answered (unreadable files are left out), as indices into `samples`.
  std::unordered_map<std::string, int> index_of;
  for (size_t i = 0; i < n; ++i) index_of.emplace(samples[i].path, static_cast<int>(i));
  std::vector<int> answered;
  for (const std::string& path : local.paths) answered.push_back(index_of.at(path));

  InferenceOutput all;
  all.labels = world.allgather(local.labels);
  const int64_t rows = static_cast<int64_t>(all.labels.size());
  all.logits = gather_rows(world, local.logits, rows);      // (N, K)
  all.features = gather_rows(world, local.features, rows);  // (N, F)
  for (int i : world.allgather(answered)) all.paths.push_back(samples[static_cast<size_t>(i)].path);
  std::vector<float> local_statistics;  // (n_r * kCount)
  for (const ImageStatistics& s : local.statistics)
    local_statistics.insert(local_statistics.end(), s.values.begin(), s.values.end());
  const std::vector<float> statistics = world.allgather(local_statistics);  // (N * kCount)
  for (size_t i = 0; i + ImageStatistics::kCount <= statistics.size(); i += ImageStatistics::kCount) {
    ImageStatistics s;
    std::copy_n(statistics.begin() + static_cast<std::ptrdiff_t>(i), ImageStatistics::kCount, s.values.begin());
    all.statistics.push_back(s);
  }
  all.skipped = std::move(local.skipped);
  return all;
}

}  // namespace mriscan
