// Model files: a MobileNetV2 plus everything needed to use it, in one safetensors file.
//
// Tensors: every parameter and buffer under its torchvision name in PyTorch layout (models/weights_io.h), plus
// optional extra tensors (the OOD detector's "ood.*"). Metadata (all strings; JSON where structured):
//   format = "mriscan-mobilenet_v2", format_version = "1", width_mult, num_classes, image_size,
//   class_names (JSON list), preprocessing (text), temperature, plus whatever the writer adds (metrics, history,
//   version, created_at). A file without a classifier (an imported backbone) has num_classes = "0".
// Files from elsewhere: a torchvision MobileNetV2 state dict written to safetensors (safetensors.torch.save_file)
// has no such metadata, and I64 "num_batches_tracked" counters (ignored). Its width multiplier is the one whose
// architecture has exactly the file's tensor shapes, its class count the classifier's rows, its image size 224,
// and its class names those given in ModelLoadOptions, else defaults with a warning in ModelFileInfo::warnings.
// (A .pth pickle goes through interop/torchvision_to_safetensors.py first.)
// What it is not: the training checkpoint (optimizer state lives in the run's resume/ folder).
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/mobilenet_v2.h"

namespace mriscan {

struct ModelLoadOptions {
  std::vector<std::string> class_names;  // for a file without class names; must match its class count
};

struct ModelFileInfo {
  float width_mult = 1.0f;
  int num_classes = 0;
  int image_size = 224;
  std::vector<std::string> class_names;
  std::map<std::string, std::string> metadata;  // raw
  std::map<std::string, Tensor> extra_tensors;  // names not belonging to the network ("ood.*")
  bool foreign = false;                         // no mriscan metadata: inferred from the tensors
  std::vector<std::string> warnings;            // what was assumed (class names), for the caller to show
};

// The class names assumed for a file without any: ImageFolder's order of this project's dataset folders for 4
// classes, else class_0 .. class_{K-1}.
std::vector<std::string> default_class_names(int num_classes);

// Writes atomically (temporary file + rename). `metadata` entries override the defaults derived from `model`.
void save_model_file(const std::string& path, MobileNetV2& model, int image_size,
                     const std::vector<std::string>& class_names, std::map<std::string, std::string> metadata,
                     const std::map<std::string, Tensor>& extra_tensors = {});

// Reads only the metadata and extra tensors (validates the format tag, or infers a foreign file's description).
ModelFileInfo read_model_info(const std::string& path, const ModelLoadOptions& options = {});

// Builds the network the file describes and loads every tensor, checking names and shapes.
std::unique_ptr<MobileNetV2> load_model_file(const std::string& path, ModelFileInfo* info = nullptr,
                                             const ModelLoadOptions& options = {});

// Writes `in` (a mriscan or foreign file) as a mriscan model file at `out`: a copy of a mriscan file; a foreign
// one with the metadata inferred for it. Returns the description of what was written.
ModelFileInfo write_as_model_file(const std::string& in, const std::string& out, const ModelLoadOptions& options = {});

// Loads the file's weights into an existing model: all of them, or the backbone only when the class count differs
// or the file has no classifier. Returns true when the classifier was loaded too.
bool load_weights_into(MobileNetV2& model, const std::string& path);

}  // namespace mriscan
