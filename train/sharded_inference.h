// Inference over a list of samples split across the processes of a data-parallel run: process r runs the
// contiguous r-th part, and the outputs are gathered, in order, on every process, so each one computes the same
// metrics and makes the same decisions (early stopping, the learning-rate schedule, the best checkpoint).
// With one process it is run_inference. What it is not: batched serving (infer/classifier.h).
#pragma once

#include <vector>

#include "data/dataset.h"
#include "engine/collective.h"
#include "infer/inference.h"
#include "models/mobilenet_v2.h"

namespace mriscan {

// As run_inference over `samples`, on every process; `skipped` holds this process's unreadable files only.
InferenceOutput run_inference_sharded(Collective& world, MobileNetV2& model, const std::vector<Sample>& samples,
                                      int image_size, int batch_size);

}  // namespace mriscan
