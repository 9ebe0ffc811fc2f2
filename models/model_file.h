// Model files: a MobileNetV2 plus everything needed to use it, in one safetensors file.
//
// Tensors: every parameter and buffer under its torchvision name in PyTorch layout (models/weights_io.h), plus
// optional extra tensors (the OOD detector's "ood.*"). Metadata (all strings; JSON where structured):
//   format = "mriscan-mobilenet_v2", format_version = "1", width_mult, num_classes, image_size,
//   class_names (JSON list), preprocessing (text), temperature, plus whatever the writer adds (metrics, history,
//   version, created_at). A file without a classifier (an imported backbone) has num_classes = "0".
// What it is not: the training checkpoint (optimizer state lives in the run's resume/ folder).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/mobilenet_v2.h"

namespace mriscan {

struct ModelFileInfo {
  float width_mult = 1.0f;
  int num_classes = 0;
  int image_size = 224;
  std::vector<std::string> class_names;
  std::map<std::string, std::string> metadata;  // raw
  std::map<std::string, Tensor> extra_tensors;  // names not belonging to the network ("ood.*")
};

// Writes atomically (temporary file + rename). `metadata` entries override the defaults derived from `model`.
void save_model_file(const std::string& path, MobileNetV2& model, int image_size,
                     const std::vector<std::string>& class_names, std::map<std::string, std::string> metadata,
                     const std::map<std::string, Tensor>& extra_tensors = {});

// Reads only the metadata and extra tensors (validates the format tag).
ModelFileInfo read_model_info(const std::string& path);

// Builds the network the file describes and loads every tensor, checking names and shapes.
std::unique_ptr<MobileNetV2> load_model_file(const std::string& path, ModelFileInfo* info = nullptr);

// Loads the file's weights into an existing model: all of them, or the backbone only when the class count differs
// or the file has no classifier. Returns true when the classifier was loaded too.
bool load_weights_into(MobileNetV2& model, const std::string& path);

}  // namespace mriscan
