// BestCheckpoint: keep the file of the best epoch so far, judged by a monitored value where lower is better
// (the validation loss), in the spirit of Keras' ModelCheckpoint(save_best_only=True).
//
//   improvement:  value < best - min_delta   -> save, best = value, best_epoch = epoch
//
// Saving is always atomic: the bytes go to "<path>.tmp", are fsynced, then renamed over <path>
// (models/safetensors.h, write_file_atomically), so a crash mid-save keeps the previous best intact.
// Two ways to produce the bytes:
//   - a callback `write(tmp_path)` that writes whatever it wants to the path it is given;
//   - `for_parameters(...)`: parameters and buffers in PyTorch layout via models/weights_io, with the epoch and
//     the monitored value added to the file's metadata.
// Also here: saving/loading an OptimizerState as a safetensors file (slot tensors as F32 tensors, learning
// rate and step count in the metadata), for exact resume.
// What it is not: a training loop or an early stopper (see early_stopping.h); it does not restore weights.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "layers/layer.h"
#include "optim/optimizer.h"

namespace mriscan {

class BestCheckpoint {
 public:
  // `write` receives the temporary path and must create the file there (throwing on failure).
  using WriteFn = std::function<void(const std::string& tmp_path)>;

  BestCheckpoint(std::string path, WriteFn write, float min_delta = 0.0f);

  // Saves the given model's parameters and buffers (shared handles: the values at save time are written), with
  // `metadata` plus {"epoch", "val_loss"} in the file.
  static BestCheckpoint for_parameters(std::string path, std::vector<NamedParameter> params,
                                       std::vector<NamedBuffer> buffers,
                                       std::map<std::string, std::string> metadata = {}, float min_delta = 0.0f);

  // Call once per epoch. Returns true when `value` is a new best and the file was written. A write failure
  // throws and leaves both the previous file and the best value unchanged.
  bool observe(float value, int epoch);

  // Whether observe() would save this value, without saving.
  bool is_improvement(float value) const { return value < best_ - min_delta_; }

  const std::string& path() const { return path_; }
  bool has_best() const { return best_epoch_ >= 0; }
  float best() const { return best_; }  // +inf before the first save
  int best_epoch() const { return best_epoch_; }  // -1 before the first save

  nlohmann::json state() const;  // {"best", "best_epoch"}
  void load_state(const nlohmann::json& state);

 private:
  // Writes <path> atomically; gets (path, epoch, value) so the parameter writer can record both in the metadata.
  using InternalWriteFn = std::function<void(const std::string& path, int epoch, float value)>;
  BestCheckpoint(std::string path, InternalWriteFn write, float min_delta, int /*tag*/);

  std::string path_;
  InternalWriteFn write_;
  float min_delta_;
  float best_;
  int best_epoch_ = -1;
};

// Optimizer state <-> safetensors file (atomic write). Metadata keys "learning_rate" and "step_count" are
// reserved; `metadata` may add others (returned through `metadata_out` when loading).
void save_optimizer_state(const std::string& path, const OptimizerState& state,
                          const std::map<std::string, std::string>& metadata = {});
OptimizerState load_optimizer_state(const std::string& path, std::map<std::string, std::string>* metadata_out = nullptr);

}  // namespace mriscan
