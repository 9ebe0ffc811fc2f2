// What becomes of every answered scan besides its response: a row in the audit trail (server/audit_log.h), a
// place in this replica's drift window (server/drift_monitor.h), and, if a person should look at it, a review
// (server/review_queue.h). Called by each prediction route once its answers are computed; none of the three waits
// on the database.
// What it is not: the answer itself (each route encodes its own) or a place for the image file (the audit trail
// keeps only its hash; the review queue only the model's input pixels).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "server/context.h"

namespace mriscan {

struct AnsweredScan {
  std::string input_sha256;           // of the bytes the client sent for it (a file, or an FP32 tensor)
  const Image* image = nullptr;       // (S, S, 3): the model's input
  const Prediction* prediction = nullptr;
};

void record_answers(ServerContext& context, const std::string& route, const std::string& request_id,
                    const ActiveModel& model, const std::vector<AnsweredScan>& scans);

// The prediction set of the server's level as class names; null when withheld or the model has no sets.
nlohmann::json prediction_set_names(const Prediction& prediction, const std::vector<std::string>& class_names);

}  // namespace mriscan
