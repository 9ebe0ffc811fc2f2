// Admin routes that change what the model learns from: POST /upload_training_data, POST /retrain,
// POST /retrain/{job_id}/cancel; and the read-only job views GET /retrain_status/{job_id}, GET /retrain_jobs.
// Each handler is one function; register_training_routes at the bottom binds them to their routes.
#include <cstdlib>
#include <regex>

#include "server/http_util.h"
#include "server/routes.h"

namespace mriscan {
namespace {

// Retrain parameters from a JSON body, or from form/query fields (numbers parsed, so both reach the same
// validation in validate_retrain_params).
nlohmann::json retrain_request(const httplib::Request& req) {
  if (req.get_header_value("Content-Type").rfind("application/json", 0) == 0) return json_body(req);
  nlohmann::json request = nlohmann::json::object();
  for (const char* field : {"epochs", "learning_rate", "frozen_blocks", "max_samples_per_class"}) {
    const std::string text = form_value(req, field);
    if (text.empty()) continue;
    nlohmann::json value = nlohmann::json::parse(text, nullptr, false);
    if (value.is_discarded() || !value.is_number())
      throw HttpError(400, std::string("'") + field + "' must be a number, got '" + text.substr(0, 40) + "'");
    request[field] = value;
  }
  return request;
}

// Jobs recorded by versions before public errors and metrics: their rows may still name server paths (a raw
// file-system error, the training configuration's folders). Shown without them.
void hide_paths_of_older_rows(nlohmann::json& job) {
  static const std::regex kAbsolutePath(R"((^|[\s'"(\[])/[^\s/]+/)");
  if (job["error"].is_string() && std::regex_search(job["error"].get<std::string>(), kAbsolutePath))
    job["error"] = "retraining failed (recorded by an older version of the server; its log has the details)";
  if (job["result"].is_object() && job["result"].contains("metrics"))
    job["result"]["metrics"] = public_metrics(job["result"]["metrics"]);
}

// The job plus its headline numbers at the top level: epoch, loss and accuracy so far, ETA, and for a
// completed job the resulting version and its validation metrics.
nlohmann::json job_view(nlohmann::json job) {
  hide_paths_of_older_rows(job);
  const nlohmann::json& progress = job["progress"];
  if (progress.is_object())
    for (const char* key : {"phase", "epoch", "epochs", "batch", "batches", "loss", "accuracy", "eta_seconds"})
      if (progress.contains(key)) job[key] = progress[key];
  const nlohmann::json& result = job["result"];
  if (result.is_object()) {
    job["model_version"] = result.value("model_version", "");
    job["activated"] = result.value("activated", false);
    if (result.contains("metrics") && result["metrics"].contains("validation"))
      job["metrics"] = result["metrics"]["validation"];
  }
  return job;
}

// POST /upload_training_data (admin): labelled scans for the next retraining (server/upload_store.h).
void post_upload_training_data(ServerContext& context, const httplib::Request& req, httplib::Response& res) {
  auto model = context.registry.active();
  if (!model) throw HttpError(503, "no model is loaded, so there are no class names to label uploads with");
  std::vector<UploadFile> files = multipart_files(req, "files");
  const std::string label = form_value(req, "label");
  if (label.empty()) throw HttpError(400, "missing 'label': one of the model's class names");
  // Decoded on one core of the thread budget and within the request's decode budget, as predictions are; the
  // rows are recorded without holding the core.
  DecodeBudget budget(context.config.decode_budget_pixel_scans);
  UploadStore::Prepared prepared = [&] {
    ThreadBudget::Lease core = context.inference.acquire_one();
    return context.uploads.prepare(files, label, model->classifier->class_names(), &budget);
  }();
  std::vector<UploadItem> items = context.uploads.commit(prepared);
  nlohmann::json listed = nlohmann::json::array();
  int stored = 0, duplicates = 0;
  for (const UploadItem& item : items) {
    (item.status == "stored" ? stored : duplicates) += 1;
    listed.push_back({{"filename", item.filename}, {"sha256", item.sha256}, {"status", item.status},
                      {"label", item.label}, {"width", item.width}, {"height", item.height}});
  }
  send_json(res, stored > 0 ? 201 : 200,
            {{"stored", stored}, {"duplicates", duplicates}, {"label", label}, {"files", listed},
             {"total_uploads", context.uploads.count()}});
}

// POST /retrain (admin): queues a retraining job (server/retrainer.h).
void post_retrain(ServerContext& context, const httplib::Request& req, httplib::Response& res) {
  if (context.config.data_dir.empty())
    throw HttpError(409, "retraining needs training data: start the server with --data DIR");
  if (!context.registry.active()) throw HttpError(503, "no model is loaded to fine-tune");
  nlohmann::json params = validate_retrain_params(retrain_request(req));
  const int64_t id = context.jobs.submit(params);
  send_json(res, 202, {{"job_id", id}, {"status", "queued"}, {"params", params},
                       {"status_url", "/retrain_status/" + std::to_string(id)}});
}

// GET /retrain_status/{job_id}
void get_retrain_status(ServerContext& context, const httplib::Request& req, httplib::Response& res) {
  const int64_t id = parse_id(req.matches[1], "job_id");
  auto job = context.jobs.get(id);
  if (!job) throw HttpError(404, "unknown job " + std::to_string(id));
  send_json(res, 200, job_view(*job));
}

// GET /retrain_jobs
void get_retrain_jobs(ServerContext& context, const httplib::Request&, httplib::Response& res) {
  nlohmann::json jobs = nlohmann::json::array();
  for (const auto& job : context.jobs.list()) jobs.push_back(job_view(job));
  send_json(res, 200, {{"jobs", jobs}, {"counts", context.jobs.counts_by_status()}});
}

// POST /retrain/{job_id}/cancel (admin)
void post_retrain_cancel(ServerContext& context, const httplib::Request& req, httplib::Response& res) {
  const int64_t id = parse_id(req.matches[1], "job_id");
  switch (context.jobs.cancel(id)) {
    case CancelOutcome::kUnknown: throw HttpError(404, "unknown job " + std::to_string(id));
    case CancelOutcome::kFinishing:
      throw HttpError(409, "job " + std::to_string(id) +
                               " has finished training and is registering its model; it can no longer be "
                               "cancelled (roll back with POST /models/{version}/activate)");
    case CancelOutcome::kAlreadyFinished: throw HttpError(409, "job " + std::to_string(id) + " has already finished");
    case CancelOutcome::kCancelled: send_json(res, 200, {{"job_id", id}, {"status", "cancelled"}}); break;
    case CancelOutcome::kCancelling:
      send_json(res, 202, {{"job_id", id}, {"status", "running"}, {"cancel_requested", true},
                           {"message", "the job stops at the next batch boundary"}});
      break;
  }
}

}  // namespace

void register_training_routes(Router& router, ServerContext& context) {
  router.post("/upload_training_data", bind_context(context, post_upload_training_data), /*admin=*/true);
  router.post("/retrain", bind_context(context, post_retrain), /*admin=*/true);
  router.get("/retrain_status/{job_id}", bind_context(context, get_retrain_status));
  router.get("/retrain_jobs", bind_context(context, get_retrain_jobs));
  router.post("/retrain/{job_id}/cancel", bind_context(context, post_retrain_cancel), /*admin=*/true);
}

}  // namespace mriscan
