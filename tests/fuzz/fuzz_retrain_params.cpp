// libFuzzer: POST /retrain's parameters (server/retrain_params.h) from arbitrary bytes: JSON parsing, then
// validation. Accepted parameters are always within their documented ranges; anything else is
// std::invalid_argument.
#include <cstdint>
#include <cstdlib>

#include "server/retrain_params.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json request = nlohmann::json::parse(data, data + size, nullptr, false);
  if (request.is_discarded()) return 0;
  try {
    nlohmann::json params = mriscan::validate_retrain_params(request);
    const int epochs = params.at("epochs"), frozen = params.at("frozen_blocks");
    const double lr = params.at("learning_rate");
    if (epochs < 1 || epochs > 100 || frozen < 0 || frozen > 19 || !(lr > 0.0 && lr <= 1.0)) std::abort();
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
