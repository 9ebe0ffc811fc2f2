// libFuzzer: POST /retrain's parameters from arbitrary bytes, as the server takes them: the JSON body with its
// depth limit (server/http_util.h), then validation (server/retrain_params.h), then the answer written as JSON.
// Accepted parameters are always within their documented ranges; anything else is HttpError or
// std::invalid_argument; every answer is valid UTF-8 as it stands; nothing recurses deep enough to exhaust the stack.
#include <cstdint>
#include <cstdlib>

#include <string>

#include "server/http_util.h"
#include "server/retrain_params.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json answer;
  try {
    const nlohmann::json request = mriscan::parse_json_request(std::string(reinterpret_cast<const char*>(data), size));
    nlohmann::json params = mriscan::validate_retrain_params(request);
    answer = params;
    const int epochs = params.at("epochs"), frozen = params.at("frozen_blocks");
    const double lr = params.at("learning_rate");
    if (epochs < 1 || epochs > 100 || frozen < 0 || frozen > 19 || !(lr > 0.0 && lr <= 1.0)) std::abort();
  } catch (const mriscan::HttpError& error) {
    answer = {{"error", error.what()}};
  } catch (const std::invalid_argument& error) {
    answer = {{"error", error.what()}};
  }
  // The answer as the server writes it, and strictly: no malformed UTF-8 that json_text would have to replace.
  try {
    (void)answer.dump();
  } catch (const nlohmann::json::type_error&) {
    std::abort();
  }
  (void)mriscan::json_text(answer);
  return 0;
}
