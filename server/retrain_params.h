// The parameters of POST /retrain, validated: a client's JSON in, the job's parameters out (or an error naming
// the field). Kept apart from the retrainer so it can be fuzzed without the trainer (tests/fuzz/).
// What it is not: the retraining itself (server/retrainer.h).
#pragma once

#include <nlohmann/json.hpp>

namespace mriscan {

// Validated retrain parameters from a request; throws std::invalid_argument naming the bad field.
nlohmann::json validate_retrain_params(const nlohmann::json& request);

}  // namespace mriscan
