// After the last epoch: the best checkpoint becomes the run's model. On the validation split: temperature
// scaling, then the out-of-distribution check (statistics from training images, thresholds from validation), then
// the prediction sets' conformal scores (train/prediction_sets.h); Testing, when present, is evaluated once, with
// nothing chosen from it, in full and without the images that have a copy in Training. Writes
// RUNDIR/model.safetensors (with the temperature, the detector, the conformal scores, the metrics and the model card
// in it), RUNDIR/metrics.json, RUNDIR/MODEL_CARD.md (train/model_card.h) and the report plots.
// What it is not: the epoch loop (train/trainer.cpp) or the metric definitions (eval/metrics.h).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "infer/inference.h"
#include "models/mobilenet_v2.h"
#include "train/splits.h"
#include "train/train_config.h"

namespace mriscan {

struct FinalModelInputs {
  const TrainConfig& config;
  const Splits& splits;
  nlohmann::json history;  // one summary per epoch
  int best_epoch = 0;      // 1-based
  // The model's outputs on a list of samples (run_inference, or its sharded form under MPI: every process gets
  // all of them, so all compute the same metrics).
  std::function<InferenceOutput(const std::vector<Sample>&)> infer;
  bool write_files = true;     // false on every rank but 0 of a data-parallel run
  double train_seconds = 0.0;  // wall time from the start of train_model to the end of the last epoch
};

// `model` must hold the best weights. `phase(name)` reports "calibrate" and "test" as they start.
// Returns the metrics written to metrics.json.
nlohmann::json write_final_model(MobileNetV2& model, const FinalModelInputs& inputs, const std::string& run_dir,
                                 const std::string& model_path, const std::function<void(const char*)>& phase);

}  // namespace mriscan
