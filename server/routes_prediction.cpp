// POST /predict, POST /predict_batch, POST /explain: decode -> Classifier (infer/classifier.h) -> encode.
// Each handler is one function; register_prediction_routes at the bottom binds them to their routes.
#include <chrono>
#include <optional>

#include "io/decode_budget.h"
#include "data/content_hash.h"
#include "io/image_io.h"
#include "server/answer_record.h"
#include "server/http_util.h"
#include "server/model_calls.h"
#include "server/routes.h"

namespace mriscan {
namespace {

// The one image of a prediction request: multipart field `file`, or a raw image body (Content-Type image/*,
// application/dicom or application/octet-stream) for `curl --data-binary @scan.jpg`.
UploadFile single_image(const httplib::Request& req) {
  const std::string type = req.get_header_value("Content-Type");
  if (type.rfind("image/", 0) == 0 || type.rfind("application/dicom", 0) == 0 ||
      type.rfind("application/octet-stream", 0) == 0)
    return {"body", req.body};
  std::vector<UploadFile> files = multipart_files(req, "file");
  if (files.empty()) throw HttpError(400, "no file: send the scan as the multipart field 'file'");
  if (files.size() > 1) throw HttpError(400, "several files in 'file': use POST /predict_batch with 'files'");
  if (files[0].bytes.empty()) throw HttpError(400, "the file '" + files[0].filename + "' is empty");
  return files[0];
}

constexpr const char* kNotAnMri = "this does not look like a brain MRI: no diagnosis is given";

// An input flagged out of distribution gets the flag and its reasons, and null in place of the class, the
// confidence, the probabilities and the prediction sets: a "notumor, 98%" for a photograph would read as a diagnosis,
// and so would a set. A model file without conformal scores answers null sets too.
nlohmann::json prediction_json(const Prediction& prediction, const std::vector<std::string>& class_names) {
  nlohmann::json body = {{"out_of_distribution", prediction.out_of_distribution},
                         {"ood_reasons", prediction.ood_reasons},
                         {"ood_score", prediction.ood_score},
                         {"ood_threshold", prediction.ood_threshold}};
  if (prediction.out_of_distribution) {
    body.update({{"predicted_class", nullptr},
                 {"class_index", nullptr},
                 {"confidence", nullptr},
                 {"probabilities", nullptr},
                 {"prediction_set", nullptr},
                 {"prediction_set_alpha", nullptr},
                 {"prediction_sets", nullptr},
                 {"message", kNotAnMri}});
    return body;
  }
  nlohmann::json probabilities = nlohmann::json::object();
  for (size_t k = 0; k < class_names.size() && k < prediction.probabilities.size(); ++k)
    probabilities[class_names[k]] = prediction.probabilities[k];
  // Each set as class names; the first is the configured level's (mriscan serve --alpha).
  nlohmann::json sets = prediction.prediction_sets.empty() ? nlohmann::json(nullptr) : nlohmann::json::object();
  for (const PredictionSet& set : prediction.prediction_sets) {
    nlohmann::json names = nlohmann::json::array();
    for (int k : set.classes) names.push_back(class_names.at(k));
    sets[alpha_key(set.alpha)] = names;
  }
  const PredictionSet* lead = sets.is_null() ? nullptr : &prediction.prediction_sets.front();
  body.update({{"predicted_class", prediction.class_name},
               {"class_index", prediction.class_index},
               {"confidence", prediction.confidence},
               {"probabilities", probabilities},
               {"prediction_set", lead ? sets[alpha_key(lead->alpha)] : nlohmann::json(nullptr)},
               {"prediction_set_alpha", lead ? nlohmann::json(lead->alpha) : nlohmann::json(nullptr)},
               {"prediction_sets", sets}});
  return body;
}

// ?class=<name or index> for /explain; -1 (the predicted class) when absent.
int explained_class(const httplib::Request& req, const std::vector<std::string>& class_names) {
  const std::string requested = form_value(req, "class");
  if (requested.empty()) return -1;
  for (size_t k = 0; k < class_names.size(); ++k)
    if (class_names[k] == requested || std::to_string(k) == requested) return static_cast<int>(k);
  throw HttpError(400, "unknown class '" + requested + "'");
}

// /predict?gradcam=1: the prediction plus its Grad-CAM, unless the input is out of distribution (a heatmap
// "explaining" a withheld class would tell it).
nlohmann::json prediction_with_gradcam(const Explanation& explanation, const std::vector<std::string>& names) {
  nlohmann::json body = prediction_json(explanation.prediction, names);
  if (!explanation.prediction.out_of_distribution)
    body["gradcam"] = {{"explained_class", names.at(explanation.class_index)},
                       {"overlay_png_base64", base64_encode(encode_png(explanation.overlay))},
                       {"heatmap_height", explanation.heatmap_h},
                       {"heatmap_width", explanation.heatmap_w},
                       {"heatmap", explanation.heatmap}};
  return body;
}

// POST /predict: one scan's class, confidence, probabilities and OOD flag; with ?gradcam=1 its Grad-CAM too.
void post_predict(ServerContext& context, const httplib::Request& req, httplib::Response& res) {
  auto model = require_model(context);
  const bool with_gradcam = form_value(req, "gradcam") == "1" || form_value(req, "gradcam") == "true";
  std::optional<ExplainAdmission::Ticket> ticket;
  if (with_gradcam) require_admission(ticket.emplace(context.explanations), context.explanations, res);
  const UploadFile file = single_image(req);
  Image image = decode_one(file, context, *model->classifier);
  const auto& names = model->classifier->class_names();
  nlohmann::json body;
  Prediction prediction;
  if (with_gradcam) {
    Explanation explanation = explain_within_budget(context, *model->classifier, image, *ticket);
    prediction = explanation.prediction;
    body = prediction_with_gradcam(explanation, names);
  } else {
    prediction = predict_within_budget(context, *model->classifier, image);
    body = prediction_json(prediction, names);
  }
  const std::string request_id = res.get_header_value("X-Request-Id");
  record_answers(context, "/predict", request_id, *model, {{sha256_hex(file.bytes), &image, &prediction}});
  context.metrics.record_inference(prediction.inference_ms / 1000.0, 1);
  body["inference_time_ms"] = prediction.inference_ms;
  body["model_version"] = model->name;
  body["request_id"] = request_id;
  res.set_header("X-Model-Version", model->name);
  send_json(res, 200, body);
}

// A batch request's images, decoded: undecodable files get an error entry in `results`, the rest go to the model.
struct DecodedBatch {
  nlohmann::json results = nlohmann::json::array();  // one entry per file, in order
  std::vector<Image> images;                          // (S, S) each: the model's input size
  std::vector<size_t> result_index;                   // the results entry of each image
};

// The files one after another on one core of the thread budget, all charged to one DecodeBudget.
DecodedBatch decode_batch(const std::vector<UploadFile>& files, const ServerContext& context,
                          const Classifier& classifier) {
  DecodeBudget budget(context.config.decode_budget_pixel_scans);
  ThreadBudget::Lease core = context.inference.acquire_one();
  DecodedBatch batch;
  for (size_t i = 0; i < files.size(); ++i) {
    batch.results.push_back({{"index", i}, {"filename", files[i].filename}});
    try {
      if (files[i].bytes.empty()) throw ImageError("empty file");
      batch.images.push_back(decode_for_model(files[i], context, classifier, budget));
      batch.result_index.push_back(i);
    } catch (const DecodeBudgetExceeded&) {
      throw;  // the request's budget, not this file: the whole batch is refused (413)
    } catch (const ImageError& error) {
      batch.results[i]["error"] = std::string("not a usable image: ") + error.what();
    }
  }
  return batch;
}

// POST /predict_batch: up to max_batch_files scans (multipart field `files`) in one model call.
void post_predict_batch(ServerContext& context, const httplib::Request& req, httplib::Response& res) {
  auto model = require_model(context);
  std::vector<UploadFile> files = multipart_files(req, "files");
  if (files.empty()) throw HttpError(400, "no files: send the scans as repeated multipart fields 'files'");
  if (static_cast<int>(files.size()) > context.config.max_batch_files)
    throw HttpError(413, "too many files: " + std::to_string(files.size()) + " > the limit of " +
                             std::to_string(context.config.max_batch_files));
  DecodedBatch batch = decode_batch(files, context, *model->classifier);
  if (batch.images.empty()) throw HttpError(400, "none of the files is a usable image", batch.results);
  const auto start = std::chrono::steady_clock::now();
  const std::vector<Prediction> predictions = predict_batch_within_budget(context, *model->classifier, batch.images);
  const double inference_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  context.metrics.record_inference(inference_ms / 1000.0, static_cast<int>(batch.images.size()));
  std::vector<AnsweredScan> answered;
  for (size_t j = 0; j < predictions.size(); ++j) {
    batch.results[batch.result_index[j]].update(prediction_json(predictions[j], model->classifier->class_names()));
    answered.push_back({sha256_hex(files[batch.result_index[j]].bytes), &batch.images[j], &predictions[j]});
  }
  record_answers(context, "/predict_batch", res.get_header_value("X-Request-Id"), *model, answered);
  res.set_header("X-Model-Version", model->name);
  send_json(res, 200,
            {{"results", batch.results},
             {"count", files.size()},
             {"predicted", batch.images.size()},
             {"failed", files.size() - batch.images.size()},
             {"inference_time_ms", inference_ms},
             {"model_version", model->name},
             {"request_id", res.get_header_value("X-Request-Id")}});
}

// POST /explain: the Grad-CAM overlay (PNG) of the predicted class, or of ?class=.
void post_explain(ServerContext& context, const httplib::Request& req, httplib::Response& res) {
  auto model = require_model(context);
  ExplainAdmission::Ticket ticket(context.explanations);
  require_admission(ticket, context.explanations, res);
  const auto& names = model->classifier->class_names();
  const int class_index = explained_class(req, names);
  const UploadFile file = single_image(req);
  Image image = decode_one(file, context, *model->classifier);
  Explanation explanation = explain_within_budget(context, *model->classifier, image, ticket, class_index);
  record_answers(context, "/explain", res.get_header_value("X-Request-Id"), *model,
                 {{sha256_hex(file.bytes), &image, &explanation.prediction}});
  context.metrics.record_inference(explanation.prediction.inference_ms / 1000.0, 1);
  if (explanation.prediction.out_of_distribution)
    throw HttpError(422, kNotAnMri, prediction_json(explanation.prediction, names));
  std::vector<uint8_t> png = encode_png(explanation.overlay);
  res.status = 200;
  res.set_header("X-Model-Version", model->name);
  res.set_header("X-Predicted-Class", explanation.prediction.class_name);
  res.set_header("X-Explained-Class", names.at(explanation.class_index));
  res.set_content(std::string(png.begin(), png.end()), "image/png");
}

}  // namespace

void register_prediction_routes(Router& router, ServerContext& context) {
  router.post("/predict", bind_context(context, post_predict));
  router.post("/predict_batch", bind_context(context, post_predict_batch));
  router.post("/explain", bind_context(context, post_explain));
}

}  // namespace mriscan
