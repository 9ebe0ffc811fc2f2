// BestCheckpoint (the "is it a new best? then save atomically" rule) and the training-state file (see the header).
#include "optim/checkpoint.h"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "optim/reduce_lr_on_plateau.h"  // best_to_json / best_from_json

namespace mriscan {

BestCheckpoint::BestCheckpoint(std::string path, WriteFn write, float min_delta)
    : path_(std::move(path)), write_(std::move(write)), min_delta_(min_delta),
      best_(std::numeric_limits<float>::infinity()) {
  if (path_.empty()) throw std::invalid_argument("BestCheckpoint: empty path");
  if (min_delta < 0.0f) throw std::invalid_argument("BestCheckpoint: min_delta must be >= 0");
}

bool BestCheckpoint::observe(float value, int epoch) {
  if (!is_improvement(value)) return false;
  // Throws before best_ changes, so a failed save is retried at the next best.
  write_file_atomically(path_, [&](const std::string& tmp_path) { write_(tmp_path, epoch); });
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

void save_training_state(const std::string& path, const std::vector<NamedParameter>& params,
                         const std::vector<NamedBuffer>& buffers, const OptimizerState& optimizer,
                         const nlohmann::json& trainer_state) {
  SafetensorsFile file;
  for (const NamedParameter& p : params) file.add("param." + p.name, p.var->value);
  for (const NamedBuffer& b : buffers) file.add("buffer." + b.name, b.tensor);
  for (const auto& [name, tensor] : optimizer.tensors) file.add("optim." + name, tensor);
  nlohmann::json meta = trainer_state;
  meta["optimizer_step_count"] = optimizer.step_count;
  meta["optimizer_learning_rate"] = optimizer.learning_rate;
  file.metadata["trainer_state"] = meta.dump();
  write_safetensors(path, file);  // atomic
}

TrainingState load_training_state(const std::string& path, const std::vector<NamedParameter>& params,
                                  const std::vector<NamedBuffer>& buffers) {
  SafetensorsFile file = read_safetensors(path);
  auto source = [&](const std::string& name, const Tensor& destination) -> const Tensor& {
    auto found = file.tensors.find(name);
    if (found == file.tensors.end()) throw std::runtime_error("training state '" + path + "': " + name + " is missing");
    if (found->second.shape() != destination.shape())
      throw std::runtime_error("training state '" + path + "': " + name + " has shape " + found->second.shape().str() +
                               ", the model has " + destination.shape().str());
    return found->second;
  };
  TrainingState state;
  try {
    if (!file.metadata.count("trainer_state")) throw std::runtime_error("metadata 'trainer_state' is missing");
    state.trainer_state = nlohmann::json::parse(file.metadata.at("trainer_state"));
    state.optimizer.step_count = state.trainer_state.at("optimizer_step_count").get<int64_t>();
    state.optimizer.learning_rate = state.trainer_state.at("optimizer_learning_rate").get<float>();
  } catch (const nlohmann::json::exception& error) {
    throw std::runtime_error("training state '" + path + "': unreadable trainer_state: " + error.what());
  } catch (const std::runtime_error& error) {
    throw std::runtime_error("training state '" + path + "': " + error.what());
  }
  for (const NamedParameter& p : params) source("param." + p.name, p.var->value);  // check everything first
  for (const NamedBuffer& b : buffers) source("buffer." + b.name, b.tensor);
  for (const NamedParameter& p : params) {
    const Tensor& from = source("param." + p.name, p.var->value);
    std::copy_n(from.data(), from.numel(), p.var->value.data());
  }
  for (const NamedBuffer& b : buffers) {
    Tensor destination = b.tensor;  // a handle sharing the layer's storage
    const Tensor& from = source("buffer." + b.name, destination);
    std::copy_n(from.data(), from.numel(), destination.data());
  }
  for (const auto& [name, tensor] : file.tensors)
    if (name.rfind("optim.", 0) == 0) state.optimizer.tensors[name.substr(6)] = tensor;
  return state;
}

}  // namespace mriscan
