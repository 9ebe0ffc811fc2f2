// Model file writing and reading on top of models/weights_io and io/safetensors.
#include "models/model_file.h"

#include <filesystem>
#include <set>
#include <stdexcept>

#include "io/safetensors.h"
#include "models/weights_io.h"

namespace mriscan {

namespace {
constexpr const char* kFormat = "mriscan-mobilenet_v2";

std::string get(const std::map<std::string, std::string>& metadata, const std::string& key, const std::string& path) {
  auto found = metadata.find(key);
  if (found == metadata.end()) throw std::runtime_error(path + ": model file has no '" + key + "' metadata");
  return found->second;
}

// torchvision's width multipliers with published or common models; the file's shapes pick one.
constexpr float kCandidateWidths[] = {0.35f, 0.5f, 0.75f, 1.0f, 1.3f, 1.4f};

// Whether every parameter and buffer of `model` is in `file` with the PyTorch shape it would be saved with.
bool shapes_match(MobileNetV2& model, const SafetensorsFile& file, bool with_classifier) {
  auto matches = [&](const std::string& name, const Tensor& tensor, ParamKind kind) {
    if (!with_classifier && name.rfind("classifier.", 0) == 0) return true;
    auto it = file.tensors.find(name);
    return it != file.tensors.end() && it->second.shape() == file_shape_for(tensor.shape(), kind);
  };
  for (const NamedParameter& p : model.parameters())
    if (!matches(p.name, p.var->value, param_kind_for(p.var->value.shape(), p.name))) return false;
  for (const NamedBuffer& b : model.buffers())
    if (!matches(b.name, b.tensor, ParamKind::kAsIs)) return false;
  return true;
}

// A file without mriscan metadata, described from its tensors (see the header).
ModelFileInfo infer_foreign_info(const std::string& path, const SafetensorsFile& file,
                                 const ModelLoadOptions& options) {
  ModelFileInfo info;
  info.foreign = true;
  info.metadata = file.metadata;
  auto classifier = file.tensors.find("classifier.1.weight");  // (K, last_channel)
  info.num_classes = classifier == file.tensors.end() ? 0 : static_cast<int>(classifier->second.dim(0));
  if (classifier != file.tensors.end() && classifier->second.shape().rank() != 2)
    throw std::runtime_error(path + ": 'classifier.1.weight' is " + classifier->second.shape().str() +
                             ", not (classes, features)");
  bool found = false;
  for (float width : kCandidateWidths) {
    MobileNetV2 candidate({.width_mult = width, .num_classes = std::max(info.num_classes, 1)});
    if (shapes_match(candidate, file, info.num_classes > 0)) {
      info.width_mult = width;
      found = true;
      break;
    }
  }
  if (!found)
    throw std::runtime_error(path +
                             ": no mriscan metadata, and its tensors are not a torchvision mobilenet_v2 of "
                             "any width in {0.35, 0.5, 0.75, 1.0, 1.3, 1.4}" +
                             (file.tensors.count("features.0.0.weight")
                                  ? " (stem weight " + file.tensors.at("features.0.0.weight").shape().str() + ")"
                                  : std::string(" (no 'features.0.0.weight')")));
  info.image_size = 224;
  if (!options.class_names.empty()) {
    if (static_cast<int>(options.class_names.size()) != info.num_classes)
      throw std::runtime_error(path + ": " + std::to_string(options.class_names.size()) +
                               " class names given, but "
                               "the classifier has " +
                               std::to_string(info.num_classes) + " outputs");
    info.class_names = options.class_names;
  } else {
    info.class_names = default_class_names(info.num_classes);
    if (info.num_classes > 0) {
      std::string list;
      for (const std::string& name : info.class_names) list += (list.empty() ? "" : ",") + name;
      info.warnings.push_back(path + " has no class names; assuming " + list + " (pass --class-names to set them)");
    }
  }
  for (const auto& [name, tensor] : file.tensors)
    if (name.rfind("features.", 0) != 0 && name.rfind("classifier.", 0) != 0) info.extra_tensors[name] = tensor;
  return info;
}
}  // namespace

std::vector<std::string> default_class_names(int num_classes) {
  if (num_classes == 4) return {"glioma", "meningioma", "notumor", "pituitary"};
  std::vector<std::string> names;
  for (int k = 0; k < num_classes; ++k) names.push_back("class_" + std::to_string(k));
  return names;
}

void save_model_file(const std::string& path, MobileNetV2& model, int image_size,
                     const std::vector<std::string>& class_names, std::map<std::string, std::string> metadata,
                     const std::map<std::string, Tensor>& extra_tensors) {
  metadata.emplace("format", kFormat);
  metadata.emplace("format_version", "1");
  metadata.emplace("width_mult", std::to_string(model.config().width_mult));
  metadata.emplace("num_classes", std::to_string(model.config().num_classes));
  metadata.emplace("image_size", std::to_string(image_size));
  metadata.emplace("class_names", nlohmann::json(class_names).dump());
  metadata.emplace("temperature", "1");
  std::vector<NamedParameter> params = model.parameters();
  std::vector<NamedBuffer> buffers = model.buffers();
  if (metadata.at("num_classes") == "0")  // a backbone: drop the (meaningless) classifier
    std::erase_if(params, [](const NamedParameter& p) { return p.name.rfind("classifier.", 0) == 0; });
  for (const auto& [name, tensor] : extra_tensors) buffers.push_back({name, tensor});
  save_parameters(path, params, buffers, metadata);
}

ModelFileInfo read_model_info(const std::string& path, const ModelLoadOptions& options) {
  if (!std::filesystem::exists(path)) throw std::runtime_error("model file not found: " + path);
  SafetensorsFile file = read_safetensors(path);
  // Without a format tag, or with safetensors.torch's own "pt": a state dict written by PyTorch.
  const auto format = file.metadata.find("format");
  if (format == file.metadata.end() || format->second == "pt") return infer_foreign_info(path, file, options);
  ModelFileInfo info;
  info.metadata = file.metadata;
  if (get(file.metadata, "format", path) != kFormat)
    throw std::runtime_error(path + ": not a mriscan model file (format '" + file.metadata["format"] + "')");
  try {
    info.width_mult = std::stof(get(file.metadata, "width_mult", path));
    info.num_classes = std::stoi(get(file.metadata, "num_classes", path));
    info.image_size = std::stoi(get(file.metadata, "image_size", path));
    info.class_names = nlohmann::json::parse(get(file.metadata, "class_names", path)).get<std::vector<std::string>>();
  } catch (const std::runtime_error&) {
    throw;
  } catch (const std::exception& error) {
    throw std::runtime_error(path + ": malformed model metadata: " + error.what());
  }
  if (info.num_classes != static_cast<int>(info.class_names.size()))
    throw std::runtime_error(path + ": num_classes = " + std::to_string(info.num_classes) + " but " +
                             std::to_string(info.class_names.size()) + " class names");
  for (const auto& [name, tensor] : file.tensors)
    if (name.rfind("features.", 0) != 0 && name.rfind("classifier.", 0) != 0) info.extra_tensors[name] = tensor;
  return info;
}

std::unique_ptr<MobileNetV2> load_model_file(const std::string& path, ModelFileInfo* info_out,
                                             const ModelLoadOptions& load_options) {
  ModelFileInfo info = read_model_info(path, load_options);
  if (info.num_classes < 1) throw std::runtime_error(path + ": the file is a backbone without a classifier");
  MobileNetV2Config config;
  config.width_mult = info.width_mult;
  config.num_classes = info.num_classes;
  auto model = std::make_unique<MobileNetV2>(config);
  LoadOptions options;
  options.skip_prefixes = {"ood."};
  load_parameters(path, model->parameters(), model->buffers(), options);
  if (info_out) *info_out = std::move(info);
  return model;
}

ModelFileInfo write_as_model_file(const std::string& in, const std::string& out, const ModelLoadOptions& options) {
  ModelFileInfo info;
  std::unique_ptr<MobileNetV2> model = load_model_file(in, &info, options);
  if (!info.foreign) {  // loaded above, so valid: copied byte for byte
    std::filesystem::copy_file(in, out, std::filesystem::copy_options::overwrite_existing);
    return info;
  }
  std::map<std::string, std::string> metadata = {
      {"source", "torchvision state dict " + std::filesystem::path(in).filename().string()},
      {"preprocessing",
       "resize to 224x224 bilinear, RGB/255, ImageNet mean (0.485,0.456,0.406) std "
       "(0.229,0.224,0.225), NHWC"}};
  save_model_file(out, *model, info.image_size, info.class_names, metadata, info.extra_tensors);
  return info;
}

bool load_weights_into(MobileNetV2& model, const std::string& path) {
  ModelFileInfo info = read_model_info(path);
  if (info.width_mult != model.config().width_mult)
    throw std::runtime_error(path + ": weights are for width " + std::to_string(info.width_mult) + ", the model is " +
                             std::to_string(model.config().width_mult));
  const bool with_classifier = info.num_classes == model.config().num_classes;
  std::vector<NamedParameter> params = model.parameters();
  if (!with_classifier)
    std::erase_if(params, [](const NamedParameter& p) { return p.name.rfind("classifier.", 0) == 0; });
  LoadOptions options;
  options.skip_prefixes = {"ood."};
  if (!with_classifier) options.skip_prefixes.push_back("classifier.");
  load_parameters(path, params, model.buffers(), options);
  return with_classifier;
}

}  // namespace mriscan
