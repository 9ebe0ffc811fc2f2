// Batched inference over a list of samples: logits, pooled features and input statistics for every image, nothing
// recorded.
// Used by evaluation, temperature scaling, OOD fitting and the trainer's validation pass.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "infer/image_statistics.h"
#include "io/image_io.h"
#include "models/mobilenet_v2.h"

namespace mriscan {

struct InferenceOutput {
  Tensor logits;                            // (N, K)
  Tensor features;                          // (N, F) globally pooled features.18 output, F = model.feature_channels()
  std::vector<ImageStatistics> statistics;  // (N) of the preprocessed inputs (infer/image_statistics.h)
  std::vector<int> labels;                  // (N)
  std::vector<std::string> paths;           // (N)
  std::vector<std::string> skipped;         // unreadable files, "path: reason"
};

// Puts the model in eval mode (and leaves it there), snapshots it as a FoldedMobileNetV2 (BN folded, ReLU6 fused,
// no tape) and runs every batch on the snapshot. `progress(done, total)` is called after each batch.
InferenceOutput run_inference(MobileNetV2& model, const std::vector<Sample>& samples, int image_size,
                              int batch_size = 32, const std::function<void(int, int)>& progress = {});

// The same for images in memory (labels -1, paths empty): generated negatives, uploads.
InferenceOutput run_inference_on_images(MobileNetV2& model, const std::vector<Image>& images, int image_size,
                                        int batch_size = 32);

// The given rows of `out` (every per-image field; `skipped` is kept whole), in the order given: a subset of the
// scans without running the model again (Testing without its copies of Training, the scans a check answers).
InferenceOutput select_rows(const InferenceOutput& out, const std::vector<size_t>& rows);

}  // namespace mriscan
