// BestCheckpoint: the "is it a new best? then save atomically" rule (see the header).
#include "optim/checkpoint.h"

#include <limits>
#include <sstream>
#include <stdexcept>

#include "models/safetensors.h"
#include "models/weights_io.h"
#include "optim/reduce_lr_on_plateau.h"  // best_to_json / best_from_json

namespace mriscan {

BestCheckpoint::BestCheckpoint(std::string path, InternalWriteFn write, float min_delta, int /*tag*/)
    : path_(std::move(path)), write_(std::move(write)), min_delta_(min_delta),
      best_(std::numeric_limits<float>::infinity()) {
  if (path_.empty()) throw std::invalid_argument("BestCheckpoint: empty path");
  if (min_delta < 0.0f) throw std::invalid_argument("BestCheckpoint: min_delta must be >= 0");
}

BestCheckpoint::BestCheckpoint(std::string path, WriteFn write, float min_delta)
    : BestCheckpoint(
          std::move(path),
          [write = std::move(write)](const std::string& final_path, int, float) { write_file_atomically(final_path, write); },
          min_delta, 0) {}

BestCheckpoint BestCheckpoint::for_parameters(std::string path, std::vector<NamedParameter> params,
                                              std::vector<NamedBuffer> buffers,
                                              std::map<std::string, std::string> metadata, float min_delta) {
  auto write = [params = std::move(params), buffers = std::move(buffers), metadata = std::move(metadata)](
                   const std::string& final_path, int epoch, float value) {
    std::map<std::string, std::string> file_metadata = metadata;
    std::ostringstream value_text;
    value_text.precision(9);  // enough digits to read the float back exactly
    value_text << value;
    file_metadata["epoch"] = std::to_string(epoch);
    file_metadata["val_loss"] = value_text.str();
    save_parameters(final_path, params, buffers, file_metadata);  // atomic: tmp, fsync, rename
  };
  return BestCheckpoint(std::move(path), InternalWriteFn(std::move(write)), min_delta, 0);
}

bool BestCheckpoint::observe(float value, int epoch) {
  if (!is_improvement(value)) return false;
  write_(path_, epoch, value);  // throws before best_ changes, so a failed save is retried at the next best
  best_ = value;
  best_epoch_ = epoch;
  return true;
}

nlohmann::json BestCheckpoint::state() const { return {{"best", best_to_json(best_)}, {"best_epoch", best_epoch_}}; }

void BestCheckpoint::load_state(const nlohmann::json& state) {
  if (!state.contains("best") || !state.contains("best_epoch"))
    throw std::runtime_error("BestCheckpoint state: needs fields 'best' and 'best_epoch'");
  best_ = best_from_json(state["best"]);
  best_epoch_ = state["best_epoch"].get<int>();
}

void save_optimizer_state(const std::string& path, const OptimizerState& state,
                          const std::map<std::string, std::string>& metadata) {
  SafetensorsFile file;
  for (const auto& [name, tensor] : state.tensors) file.add(name, tensor);
  file.metadata = metadata;
  std::ostringstream lr_text;
  lr_text.precision(9);  // round-trips a float exactly
  lr_text << state.learning_rate;
  file.metadata["learning_rate"] = lr_text.str();
  file.metadata["step_count"] = std::to_string(state.step_count);
  write_safetensors(path, file);
}

OptimizerState load_optimizer_state(const std::string& path, std::map<std::string, std::string>* metadata_out) {
  SafetensorsFile file = read_safetensors(path);
  for (const char* key : {"learning_rate", "step_count"})
    if (!file.metadata.count(key))
      throw std::runtime_error("optimizer state '" + path + "': metadata '" + key + "' is missing");
  OptimizerState state;
  try {
    state.learning_rate = std::stof(file.metadata.at("learning_rate"));
    state.step_count = std::stoll(file.metadata.at("step_count"));
  } catch (const std::logic_error&) {
    throw std::runtime_error("optimizer state '" + path + "': 'learning_rate' or 'step_count' is not a number");
  }
  state.tensors = std::move(file.tensors);
  if (metadata_out) *metadata_out = std::move(file.metadata);
  return state;
}

}  // namespace mriscan
