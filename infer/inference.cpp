// run_inference: the data loader (no augmentation, no shuffle) feeding the folded, untaped forward
// (models/folded_mobilenet_v2.h), snapshotted from the model once per call (O(#weights), small next to a pass over
// the samples).
#include "infer/inference.h"

#include <algorithm>

#include "data/data_loader.h"
#include "data/preprocess.h"
#include "models/folded_mobilenet_v2.h"

namespace mriscan {

InferenceOutput run_inference(MobileNetV2& model, const std::vector<Sample>& samples, int image_size, int batch_size,
                              const std::function<void(int, int)>& progress) {
  model.set_training(false);
  const FoldedMobileNetV2 folded(model);  // BN on the running statistics: the eval-mode network
  DataLoaderConfig options;               // no shuffle, no augmentation, keep the last partial batch
  options.batch_size = batch_size;
  options.image_size = image_size;
  options.shuffle = false;
  DataLoader loader(samples, options);
  loader.start_epoch(0);

  const int num_classes = model.config().num_classes, feature_dim = model.feature_channels();
  std::vector<float> logits, features;
  InferenceOutput out;
  const int total = loader.batches_per_epoch();
  int done = 0;
  while (std::optional<Batch> next = loader.next()) {
    const Batch& batch = *next;
    const FoldedOutput result = folded.forward(batch.images);  // logits (B, K), features (B, F)
    logits.insert(logits.end(), result.logits.data(), result.logits.data() + result.logits.numel());
    features.insert(features.end(), result.features.data(), result.features.data() + result.features.numel());
    for (const ImageStatistics& s : image_statistics(batch.images)) out.statistics.push_back(s);
    out.labels.insert(out.labels.end(), batch.labels.begin(), batch.labels.end());
    out.paths.insert(out.paths.end(), batch.paths.begin(), batch.paths.end());
    if (progress) progress(++done, total);
  }
  for (const SkippedFile& skipped : loader.skipped_files()) out.skipped.push_back(skipped.path + ": " + skipped.reason);
  const int64_t n = static_cast<int64_t>(out.labels.size());
  out.logits = Tensor(Shape{n, num_classes}, logits);
  out.features = Tensor(Shape{n, feature_dim}, features);
  return out;
}

InferenceOutput run_inference_on_images(MobileNetV2& model, const std::vector<Image>& images, int image_size,
                                        int batch_size) {
  model.set_training(false);
  const FoldedMobileNetV2 folded(model);
  InferenceOutput out;
  std::vector<float> logits, features;
  for (size_t start = 0; start < images.size(); start += batch_size) {
    const std::vector<Image> chunk(images.begin() + start,
                                   images.begin() + std::min(images.size(), start + static_cast<size_t>(batch_size)));
    const Tensor batch = preprocess_batch(chunk, image_size);  // (B, S, S, 3)
    const FoldedOutput result = folded.forward(batch);         // logits (B, K), features (B, F)
    logits.insert(logits.end(), result.logits.data(), result.logits.data() + result.logits.numel());
    features.insert(features.end(), result.features.data(), result.features.data() + result.features.numel());
    for (const ImageStatistics& s : image_statistics(batch)) out.statistics.push_back(s);
  }
  const int64_t n = static_cast<int64_t>(images.size());
  out.labels.assign(images.size(), -1);
  out.logits = Tensor(Shape{n, model.config().num_classes}, logits);
  out.features = Tensor(Shape{n, model.feature_channels()}, features);
  return out;
}

namespace {

// Row i of `table` (N, D) for each i of `rows`: a (rows, D) tensor.
Tensor gather_rows(const Tensor& table, const std::vector<size_t>& rows) {
  const int64_t d = table.dim(1);
  std::vector<float> values;
  values.reserve(rows.size() * d);
  for (size_t i : rows) values.insert(values.end(), table.data() + i * d, table.data() + (i + 1) * d);
  return Tensor(Shape{static_cast<int64_t>(rows.size()), d}, values);
}

}  // namespace

InferenceOutput select_rows(const InferenceOutput& out, const std::vector<size_t>& rows) {
  InferenceOutput kept;
  kept.logits = gather_rows(out.logits, rows);
  if (out.features.defined()) kept.features = gather_rows(out.features, rows);
  for (size_t i : rows) {
    if (i < out.statistics.size()) kept.statistics.push_back(out.statistics[i]);
    kept.labels.push_back(out.labels.at(i));
    if (i < out.paths.size()) kept.paths.push_back(out.paths[i]);
  }
  kept.skipped = out.skipped;
  return kept;
}

}  // namespace mriscan
