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
}  // namespace

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

ModelFileInfo read_model_info(const std::string& path) {
  if (!std::filesystem::exists(path)) throw std::runtime_error("model file not found: " + path);
  SafetensorsFile file = read_safetensors(path);
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

std::unique_ptr<MobileNetV2> load_model_file(const std::string& path, ModelFileInfo* info_out) {
  ModelFileInfo info = read_model_info(path);
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
