// Validation of POST /retrain's parameters; see retrain_params.h.
#include "server/retrain_params.h"

#include <stdexcept>
#include <string>

#include "models/mobilenet_v2.h"

namespace mriscan {
namespace {

// Reads an optional integer field within [low, high]; throws naming the field.
int int_field(const nlohmann::json& request, const std::string& name, int fallback, int low, int high) {
  if (!request.contains(name) || request[name].is_null()) return fallback;
  const nlohmann::json& value = request[name];
  if (!value.is_number_integer())
    throw std::invalid_argument("'" + name + "' must be an integer, got " + value.dump());
  int64_t v = value.get<int64_t>();
  if (v < low || v > high)
    throw std::invalid_argument("'" + name + "' must be in [" + std::to_string(low) + ", " + std::to_string(high) +
                                "], got " + std::to_string(v));
  return static_cast<int>(v);
}

}  // namespace

nlohmann::json validate_retrain_params(const nlohmann::json& request) {
  if (!request.is_object()) throw std::invalid_argument("the request body must be a JSON object");
  for (const auto& [key, value] : request.items())
    if (key != "epochs" && key != "learning_rate" && key != "frozen_blocks" && key != "max_samples_per_class")
      throw std::invalid_argument("unknown field '" + key +
                                  "': expected epochs, learning_rate, frozen_blocks, max_samples_per_class");
  if (!request.contains("epochs")) throw std::invalid_argument("'epochs' is required");
  nlohmann::json params;
  params["epochs"] = int_field(request, "epochs", 1, 1, 100);
  double learning_rate = 1e-4;
  if (request.contains("learning_rate") && !request["learning_rate"].is_null()) {
    if (!request["learning_rate"].is_number())
      throw std::invalid_argument("'learning_rate' must be a number, got " + request["learning_rate"].dump());
    learning_rate = request["learning_rate"].get<double>();
    if (!(learning_rate > 0.0 && learning_rate <= 1.0))
      throw std::invalid_argument("'learning_rate' must be in (0, 1], got " + std::to_string(learning_rate));
  }
  params["learning_rate"] = learning_rate;
  params["frozen_blocks"] = int_field(request, "frozen_blocks", 0, 0, MobileNetV2::kNumBlocks);
  params["max_samples_per_class"] = int_field(request, "max_samples_per_class", 0, 0, 1000000);
  return params;
}

}  // namespace mriscan
