// Decode and model calls shared by the prediction routes; see model_calls.h.
#include "server/model_calls.h"

#include "data/preprocess.h"
#include "server/http_util.h"

namespace mriscan {

std::shared_ptr<const ActiveModel> require_model(ServerContext& context) {
  auto model = context.registry.active();
  if (!model) throw HttpError(503, "no model is loaded yet (see GET /ready)");
  return model;
}

// A request holds one decode at a time, and otherwise at most max_batch_files images of S*S*3 bytes
// (64 x 147 KB at S = 224).
Image decode_for_model(const UploadFile& file, const ServerContext& context, const Classifier& classifier,
                       DecodeBudget& budget) {
  DecodeLimits limits = context.config.image_limits;
  limits.min_decoded_side = classifier.image_size();
  return resize_to_input(decode_image(reinterpret_cast<const uint8_t*>(file.bytes.data()), file.bytes.size(), limits,
                                      "'" + file.filename + "'", &budget),
                         classifier.image_size());
}

Image decode_one(const UploadFile& file, const ServerContext& context, const Classifier& classifier) {
  DecodeBudget budget(context.config.decode_budget_pixel_scans);
  ThreadBudget::Lease core = context.inference.acquire_one();
  return decode_for_model(file, context, classifier, budget);
}

// Each holds kernel threads only while the model computes, never while the response is encoded.
Prediction predict_within_budget(ServerContext& context, Classifier& classifier, const Image& image) {
  ThreadBudget::Lease cores = context.inference.acquire();  // every free core, or one under load
  return classifier.predict(image);
}

std::vector<Prediction> predict_batch_within_budget(ServerContext& context, Classifier& classifier,
                                                    const std::vector<Image>& images) {
  ThreadBudget::Lease cores = context.inference.acquire();
  return classifier.predict_batch(images);
}

void require_admission(const ExplainAdmission::Ticket& ticket, const ExplainAdmission& admission,
                       httplib::Response& res) {
  if (ticket.admitted()) return;
  res.set_header("Retry-After", "1");
  throw HttpError(503, "too many Grad-CAM requests: one runs and " + std::to_string(admission.max_waiting()) +
                           " may wait (the limit); retry shortly");
}

// The wait for the turn comes before the budget's, so that a waiting explanation holds no core.
Explanation explain_within_budget(ServerContext& context, Classifier& classifier, const Image& image,
                                  ExplainAdmission::Ticket& ticket, int class_index) {
  ticket.wait_turn();
  ThreadBudget::Lease cores = context.inference.acquire();
  return classifier.explain(image, class_index);
}

}  // namespace mriscan
