// run_inference: the data loader (no augmentation, no shuffle) feeding an eval-mode forward with recording off.
#include "models/inference.h"

#include <cstring>

#include "models/data_loader.h"

namespace mriscan {

InferenceOutput run_inference(MobileNetV2& model, const std::vector<Sample>& samples, int image_size, int batch_size,
                              const std::function<void(int, int)>& progress) {
  model.set_training(false);
  DataLoaderConfig options;  // no shuffle, no augmentation, keep the last partial batch
  options.batch_size = batch_size;
  options.image_size = image_size;
  options.shuffle = false;
  DataLoader loader(samples, options);
  loader.start_epoch(0);

  const int num_classes = model.config().num_classes, feature_dim = model.feature_channels();
  std::vector<float> logits, features;
  InferenceOutput out;
  Tape tape;
  tape.set_enabled(false);
  const int total = loader.batches_per_epoch();
  int done = 0;
  while (std::optional<Batch> next = loader.next()) {
    const Batch& batch = *next;
    Var feature_map = model.forward_blocks(tape, make_var(batch.images), 0, MobileNetV2::kNumBlocks);
    Var pooled = model.pool(tape, feature_map);            // (B, F)
    Var batch_logits = model.forward_classifier(tape, pooled);  // (B, K)
    logits.insert(logits.end(), batch_logits->value.data(), batch_logits->value.data() + batch_logits->value.numel());
    features.insert(features.end(), pooled->value.data(), pooled->value.data() + pooled->value.numel());
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

}  // namespace mriscan
