// The steps every prediction route shares, whatever its wire format (mriscan's own API in
// server/routes_prediction.cpp, the Open Inference Protocol in server/routes_inference_protocol.cpp, the review
// queue's Grad-CAM in server/routes_review.cpp): the active model or 503, an image decoded within the request's
// decode budget on one core of the thread budget, the model called with kernel threads from the thread budget only
// while it computes, and Grad-CAM's admission and turn.
// What it is not: encoding (each route file writes its own answer).
#pragma once

#include <memory>
#include <vector>

#include "io/decode_budget.h"
#include "server/context.h"

namespace mriscan {

// The version being served, or HttpError 503.
std::shared_ptr<const ActiveModel> require_model(ServerContext& context);

// Decoded (a large JPEG at the smallest DCT scale that keeps both sides >= S: io/jpeg_decode.h) and at once
// resized to the model's input (S x S), the one resize of the path. Charges `budget` (DecodeBudgetExceeded: the
// router answers 413); the caller holds a core of the thread budget.
Image decode_for_model(const UploadFile& file, const ServerContext& context, const Classifier& classifier,
                       DecodeBudget& budget);
// One image of a request, with a budget of its own, on one core of the thread budget.
Image decode_one(const UploadFile& file, const ServerContext& context, const Classifier& classifier);

Prediction predict_within_budget(ServerContext& context, Classifier& classifier, const Image& image);
std::vector<Prediction> predict_batch_within_budget(ServerContext& context, Classifier& classifier,
                                                    const std::vector<Image>& images);

// A Grad-CAM request's place (server/explain_admission.h), taken before its image is decoded; none free: HttpError
// 503 at once, with Retry-After.
void require_admission(const ExplainAdmission::Ticket& ticket, const ExplainAdmission& admission,
                       httplib::Response& res);
// Explanations run one at a time (the taped network is not reentrant), then with the thread budget's cores.
Explanation explain_within_budget(ServerContext& context, Classifier& classifier, const Image& image,
                                  ExplainAdmission::Ticket& ticket, int class_index = -1);

}  // namespace mriscan
