// The review queue's admin routes (server/review_queue.h): GET /reviews (?status=pending|labelled|discarded,
// limit, before_id), GET /reviews/{id}/image and /reviews/{id}/gradcam (PNG), and POST /reviews/{id} with
// {"label": "<class>"} (the scan becomes a training upload) or {"discard": true}.
#include "server/http_util.h"
#include "server/model_calls.h"
#include "server/routes.h"

namespace mriscan {
namespace {

// GET /reviews
void get_reviews(ServerContext& context, const httplib::Request& req, httplib::Response& res) {
  const std::string status = req.has_param("status") ? req.get_param_value("status") : "pending";
  if (status != "pending" && status != "labelled" && status != "discarded")
    throw HttpError(400, "'status' is pending, labelled or discarded");
  const int64_t limit = req.has_param("limit") ? parse_id(req.get_param_value("limit"), "limit") : 50;
  if (limit < 1 || limit > 500) throw HttpError(400, "'limit' is from 1 to 500");
  std::optional<int64_t> before;
  if (req.has_param("before_id")) before = parse_id(req.get_param_value("before_id"), "before_id");
  std::vector<nlohmann::json> reviews = context.reviews.list(status, static_cast<int>(limit), before);
  nlohmann::json body = {{"reviews", reviews}, {"pending", context.reviews.pending()},
                         {"dropped", context.reviews.dropped()}};
  body["next_before_id"] =
      !reviews.empty() && reviews.size() == static_cast<size_t>(limit) ? reviews.back()["id"] : nlohmann::json();
  send_json(res, 200, body);
}

std::string pending_image(ServerContext& context, const httplib::Request& req) {
  const int64_t id = parse_id(req.matches[1], "review id");
  std::optional<std::string> png = context.reviews.image_png(id);
  if (!png) throw HttpError(404, "no pending review " + std::to_string(id));
  return *png;
}

// GET /reviews/{id}/image
void get_review_image(ServerContext& context, const httplib::Request& req, httplib::Response& res) {
  res.status = 200;
  res.set_content(pending_image(context, req), "image/png");
}

// GET /reviews/{id}/gradcam: the active model's Grad-CAM of the stored scan (even if it was withheld: the reviewer
// decides, and sees where the model looked), admitted as /explain's are.
void get_review_gradcam(ServerContext& context, const httplib::Request& req, httplib::Response& res) {
  const std::string png = pending_image(context, req);
  auto model = require_model(context);
  ExplainAdmission::Ticket ticket(context.explanations);
  require_admission(ticket, context.explanations, res);
  const Image image = decode_image(reinterpret_cast<const uint8_t*>(png.data()), png.size(),
                                   context.config.image_limits, "the stored scan");
  const Explanation explanation = explain_within_budget(context, *model->classifier, image, ticket);
  const std::vector<uint8_t> overlay = encode_png(explanation.overlay);
  res.status = 200;
  res.set_header("X-Explained-Class", model->classifier->class_names().at(explanation.class_index));
  res.set_content(std::string(overlay.begin(), overlay.end()), "image/png");
}

// POST /reviews/{id}: a label (the scan is stored as a training upload, server/upload_store.h) or a discard.
void post_review_decision(ServerContext& context, const httplib::Request& req, httplib::Response& res) {
  const int64_t id = parse_id(req.matches[1], "review id");
  const nlohmann::json body = json_body(req);
  if (!body.is_object()) throw HttpError(400, "send {\"label\": \"<class>\"} or {\"discard\": true}");
  const bool discard = body.contains("discard") && body["discard"].is_boolean() && body["discard"].get<bool>();
  const std::string label = body.contains("label") && body["label"].is_string() ? body["label"].get<std::string>() : "";
  if (discard == !label.empty()) throw HttpError(400, "send {\"label\": \"<class>\"} or {\"discard\": true}");
  auto model = require_model(context);
  const auto& names = model->classifier->class_names();
  if (!discard && std::find(names.begin(), names.end(), label) == names.end())
    throw HttpError(400, "unknown label '" + label + "'");
  // A label stores the upload first (content-addressed: a repeat stores nothing twice), then decides: a crash in
  // between leaves the review pending, never decided without its upload.
  nlohmann::json answer = {{"id", id}, {"status", discard ? "discarded" : "labelled"}};
  if (!discard) {
    std::optional<std::string> png = context.reviews.image_png(id);
    if (!png) throw HttpError(409, "review " + std::to_string(id) + " is not pending (unknown, or decided already)");
    const std::vector<UploadFile> files = {{"review-" + std::to_string(id) + ".png", *png}};
    UploadStore::Prepared prepared = context.uploads.prepare(files, label, names);
    const UploadItem item = context.uploads.commit(prepared).at(0);
    answer["label"] = label;
    answer["upload"] = {{"sha256", item.sha256}, {"status", item.status}};
  }
  if (!context.reviews.decide(id, discard ? "discarded" : "labelled", label))
    throw HttpError(409, "review " + std::to_string(id) + " is not pending (unknown, or decided already)");
  send_json(res, 200, answer);
}

}  // namespace

void register_review_routes(Router& router, ServerContext& context) {
  router.get("/reviews", bind_context(context, get_reviews), /*admin=*/true);
  router.get("/reviews/{id}/image", bind_context(context, get_review_image), /*admin=*/true);
  router.get("/reviews/{id}/gradcam", bind_context(context, get_review_gradcam), /*admin=*/true);
  router.post("/reviews/{id}", bind_context(context, post_review_decision), /*admin=*/true);
}

}  // namespace mriscan
