// The pictures of a training run, written into RUNDIR as PNG files:
//   history.png           train/val loss, train/val accuracy and learning rate per epoch
//   confusion_matrix.png  on the evaluated split (test when there is one, else validation)
//   per_class.png         precision, recall, F1 per class
//   samples.png           a few images per class
//   gradcam.png           Grad-CAM of the model on a few evaluated images, with true and predicted class
// What it is not: metric computation (eval/metrics.h) or drawing primitives (eval/plot.h).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "infer/inference.h"
#include "models/mobilenet_v2.h"

namespace mriscan {

// `metrics` is the trainer's metrics document (history, validation, test); `evaluated` the inference output the
// confusion matrix was computed from.
void write_run_report(const std::string& run_dir, MobileNetV2& model, int image_size,
                      const std::vector<std::string>& class_names, const nlohmann::json& metrics,
                      const InferenceOutput& evaluated);

}  // namespace mriscan
