// The Open Inference Protocol (KServe's v2 REST/JSON API) beside mriscan's own: server metadata and health,
// model metadata and readiness, and inference, for the clients, gateways and autoscalers that speak it. The model
// is served under one name (ServerConfig::inference_model_name, "mriscan"); its versions are the registry's ("3"
// or "v3"), and only the active one answers inferences (the others are listed, not loaded).
//
// Inference takes one input, either
//   * BYTES, shape [N]: each element the base64 of a JPEG, PNG or DICOM file (the protocol's JSON form of bytes), or
//   * FP32, shape [N, S, S, 3] (S = 224): RGB pixel values in [0, 255], row-major, flat or nested; they are
//     rounded to 8 bits, as a scan file's pixels are, before the model's own preprocessing;
// and answers FP32 "probabilities" [N, K], BYTES "class" [N], BOOL "out_of_distribution" [N] and BYTES
// "prediction_set" [N] (the leading level's set, mriscan serve --alpha, as a JSON list of class names). An input
// that is out of distribution gets class "", zero probabilities and set "": no diagnosis is given (as /predict's
// nulls); so does every set of a model file without conformal scores.
// Errors are the router's JSON errors, whose "error" member is the protocol's error form. Limits, the decode
// budget, the thread budget and metrics are /predict_batch's, and the JSON body is capped at 8 MB.
// What it is not: the protocol's gRPC form, its binary-data extension, or model repository management.
#include <algorithm>
#include <cmath>
#include <optional>

#include "data/content_hash.h"
#include "io/utf8.h"
#include "server/answer_record.h"
#include "server/http_util.h"
#include "server/model_calls.h"
#include "server/routes.h"

namespace mriscan {
namespace {

// A JSON body costs about 16-32 bytes of parsed document per number it holds (nlohmann::json), so the bodies this
// route parses are capped below the server's body limit, and parsed on a core of the thread budget: at most as
// many at once as there are cores. FP32 pixels of 224 x 224 images are about 0.9 MB per image as JSON text; larger
// batches go as BYTES files.
constexpr size_t kMaxInferJsonBytes = 8u << 20;

// The path's model name and version, checked against what is served; the active version when `version` is
// empty. 404 for another name or an unknown version.
ModelVersion checked_version(ServerContext& context, const std::string& name, const std::string& version) {
  const std::string& served = context.config.inference_model_name;
  if (name != served)
    throw HttpError(404, "unknown model '" + printable_utf8(name.substr(0, 64)) + "': this server serves '" + served +
                             "'");
  std::optional<ModelVersion> found;
  if (version.empty()) {
    found = context.registry.find(require_model(context)->number);
  } else if (auto number = parse_version(version)) {
    found = context.registry.find(*number);
  }
  if (!found)
    throw HttpError(404, "model '" + served + "' has no version '" + printable_utf8(version.substr(0, 32)) + "'");
  return *found;
}

std::string path_part(const httplib::Request& req, size_t index) {
  return index < req.matches.size() ? req.matches[index].str() : std::string();
}

// GET /v2: the project's version (CMakeLists.txt); no protocol extension is implemented.
void get_server_metadata(ServerContext&, const httplib::Request&, httplib::Response& res) {
  send_json(res, 200, {{"name", "mriscan"}, {"version", MRISCAN_VERSION}, {"extensions", nlohmann::json::array()}});
}

// GET /v2/health/live, /v2/health/ready (on the probe thread, as /health and /ready)
void get_live(ServerContext&, const httplib::Request&, httplib::Response& res) {
  send_json(res, 200, {{"live", true}});
}

void get_server_ready(ServerContext& context, const httplib::Request&, httplib::Response& res) {
  const std::string problem = context.readiness_problem();
  if (!problem.empty()) throw HttpError(503, problem);
  send_json(res, 200, {{"ready", true}});
}

// GET /v2/models/{name}[/versions/{version}]
void get_model_metadata(ServerContext& context, const httplib::Request& req, httplib::Response& res) {
  const ModelVersion version = checked_version(context, path_part(req, 1), path_part(req, 2));
  auto model = require_model(context);
  nlohmann::json versions = nlohmann::json::array();
  for (const ModelVersion& listed : context.registry.list()) versions.push_back(std::to_string(listed.number));
  const int size = model->classifier->image_size();
  const int classes = static_cast<int>(model->classifier->class_names().size());
  send_json(res, 200,
            {{"name", context.config.inference_model_name},
             {"versions", versions},
             {"platform", "mriscan"},
             {"inputs",
              {{{"name", "image"}, {"datatype", "BYTES"}, {"shape", {-1}}},
               {{"name", "pixels"}, {"datatype", "FP32"}, {"shape", {-1, size, size, 3}}}}},
             {"outputs",
              {{{"name", "probabilities"}, {"datatype", "FP32"}, {"shape", {-1, classes}}},
               {{"name", "class"}, {"datatype", "BYTES"}, {"shape", {-1}}},
               {{"name", "out_of_distribution"}, {"datatype", "BOOL"}, {"shape", {-1}}},
               {{"name", "prediction_set"}, {"datatype", "BYTES"}, {"shape", {-1}}}}},
             {"parameters",
              {{"class_names", model->classifier->class_names()},
               {"prediction_set_alpha", model->classifier->set_alpha()},
               {"active_version", std::to_string(model->number)},
               {"described_version", std::to_string(version.number)}}}});
}

// GET /v2/models/{name}[/versions/{version}]/ready: the active version is ready; the others are not loaded.
void get_model_ready(ServerContext& context, const httplib::Request& req, httplib::Response& res) {
  const ModelVersion version = checked_version(context, path_part(req, 1), path_part(req, 2));
  auto active = context.registry.active();
  const bool ready = active && active->number == version.number;
  send_json(res, ready ? 200 : 503, {{"name", context.config.inference_model_name}, {"ready", ready}});
}

// The tensor's elements in row-major order, nested arrays flattened (at most `rank` levels).
void flatten(const nlohmann::json& data, int rank, std::vector<const nlohmann::json*>& out) {
  if (!data.is_array()) {
    out.push_back(&data);
    return;
  }
  if (rank == 0) throw HttpError(400, "'data' is nested deeper than the input's shape");
  for (const nlohmann::json& element : data) flatten(element, rank - 1, out);
}

// The input's images: decoded files (BYTES) or 8-bit images from pixel values (FP32), with the SHA-256 of what
// was sent for each (the audit trail's input hash: the file's bytes, or the pixels as rounded).
struct InputImages {
  std::vector<Image> images;        // (S, S, 3) each
  std::vector<std::string> sha256;  // one per image
};

InputImages input_images(ServerContext& context, const Classifier& classifier, const nlohmann::json& input) {
  const std::string datatype = input.value("datatype", "");
  const nlohmann::json& shape = input.contains("shape") ? input["shape"] : nlohmann::json();
  if (!shape.is_array() || shape.empty() || !std::all_of(shape.begin(), shape.end(), [](const nlohmann::json& d) {
        return d.is_number_integer() && d.get<int64_t>() >= 0;
      }))
    throw HttpError(400, "the input needs a 'shape' of non-negative integers");
  const int64_t n = shape[0];
  if (n < 1 || n > context.config.max_batch_files)
    throw HttpError(n < 1 ? 400 : 413, "the input holds " + std::to_string(n) + " images; 1 to " +
                                           std::to_string(context.config.max_batch_files) + " are served");
  const nlohmann::json data = input.contains("data") ? input["data"] : nlohmann::json();
  std::vector<const nlohmann::json*> elements;  // into `data`
  flatten(data, static_cast<int>(shape.size()), elements);
  InputImages inputs;
  if (datatype == "BYTES") {
    if (shape.size() != 1 || elements.size() != static_cast<size_t>(n))
      throw HttpError(400, "a BYTES input has shape [N] and N base64 strings in 'data'");
    DecodeBudget budget(context.config.decode_budget_pixel_scans);
    ThreadBudget::Lease core = context.inference.acquire_one();
    for (int64_t i = 0; i < n; ++i) {
      const std::string what = "element " + std::to_string(i) + " of the input";
      if (!elements[i]->is_string()) throw HttpError(400, what + " is not a string");
      const UploadFile file{what, base64_decode(elements[i]->get<std::string>(), what)};
      inputs.images.push_back(decode_for_model(file, context, classifier, budget));
      inputs.sha256.push_back(sha256_hex(file.bytes));
    }
    return inputs;
  }
  if (datatype != "FP32") throw HttpError(400, "the input's datatype must be BYTES (image files) or FP32 (pixels)");
  const int64_t size = classifier.image_size();
  if (shape.size() != 4 || shape[1] != size || shape[2] != size || shape[3] != 3 ||
      elements.size() != static_cast<size_t>(n * size * size * 3))
    throw HttpError(400, "an FP32 input has shape [N, " + std::to_string(size) + ", " + std::to_string(size) +
                             ", 3] and as many numbers in 'data'");
  for (int64_t i = 0; i < n; ++i) {
    Image image(static_cast<int>(size), static_cast<int>(size));  // (S, S, 3)
    for (size_t k = 0; k < image.rgb.size(); ++k) {
      const nlohmann::json& value = *elements[i * image.rgb.size() + k];
      const double pixel = value.is_number() ? value.get<double>() : -1.0;
      if (!(pixel >= 0.0 && pixel <= 255.0)) throw HttpError(400, "FP32 pixels must be numbers in [0, 255]");
      image.rgb[k] = static_cast<uint8_t>(std::lround(pixel));
    }
    inputs.sha256.push_back(sha256_hex(image.rgb.data(), image.rgb.size()));  // of the pixels, as rounded
    inputs.images.push_back(std::move(image));
  }
  return inputs;
}

// The leading prediction set as a JSON list of class names ("[\"glioma\"]"); "" when none is given.
std::string prediction_set_text(const Prediction& p, const std::vector<std::string>& class_names) {
  if (p.out_of_distribution || p.prediction_sets.empty()) return "";
  nlohmann::json names = nlohmann::json::array();
  for (int k : p.prediction_sets.front().classes) names.push_back(class_names.at(k));
  return names.dump();
}

// The four outputs, or those the request names in "outputs".
nlohmann::json output_tensors(const std::vector<Prediction>& predictions, const std::vector<std::string>& class_names,
                              const nlohmann::json& requested) {
  const auto n = static_cast<int64_t>(predictions.size());
  const size_t classes = class_names.size();
  nlohmann::json probabilities = nlohmann::json::array(), names = nlohmann::json::array(),
                 flags = nlohmann::json::array(), sets = nlohmann::json::array();
  for (const Prediction& p : predictions) {
    for (size_t k = 0; k < classes; ++k)
      probabilities.push_back(p.out_of_distribution || k >= p.probabilities.size() ? 0.0f : p.probabilities[k]);
    names.push_back(p.out_of_distribution ? "" : p.class_name);
    flags.push_back(p.out_of_distribution);
    sets.push_back(prediction_set_text(p, class_names));
  }
  const nlohmann::json all = {
      {{"name", "probabilities"}, {"datatype", "FP32"}, {"shape", {n, static_cast<int64_t>(classes)}},
       {"data", probabilities}},
      {{"name", "class"}, {"datatype", "BYTES"}, {"shape", {n}}, {"data", names}},
      {{"name", "out_of_distribution"}, {"datatype", "BOOL"}, {"shape", {n}}, {"data", flags}},
      {{"name", "prediction_set"}, {"datatype", "BYTES"}, {"shape", {n}}, {"data", sets}}};
  if (!requested.is_array()) return all;
  nlohmann::json chosen = nlohmann::json::array();
  for (const nlohmann::json& wanted : requested) {
    const std::string name = wanted.is_object() ? wanted.value("name", "") : "";
    auto found = std::find_if(all.begin(), all.end(), [&](const nlohmann::json& o) { return o["name"] == name; });
    if (found == all.end()) throw HttpError(400, "unknown output '" + printable_utf8(name.substr(0, 64)) + "'");
    chosen.push_back(*found);
  }
  return chosen;
}

// POST /v2/models/{name}[/versions/{version}]/infer
void post_infer(ServerContext& context, const httplib::Request& req, httplib::Response& res) {
  const ModelVersion version = checked_version(context, path_part(req, 1), path_part(req, 2));
  auto model = require_model(context);
  if (model->number != version.number)
    throw HttpError(400, "version " + std::to_string(version.number) + " is not served: the active version is " +
                             std::to_string(model->number));
  if (req.body.size() > kMaxInferJsonBytes)
    throw HttpError(413, "an inference request's JSON is limited to " + std::to_string(kMaxInferJsonBytes >> 20) +
                             " MB: send the images as BYTES (base64 files), or fewer per request");
  nlohmann::json request;
  {
    ThreadBudget::Lease core = context.inference.acquire_one();
    request = parse_json_request(req.body);
  }
  if (!request.is_object() || !request.contains("inputs") || !request["inputs"].is_array() ||
      request["inputs"].size() != 1 || !request["inputs"][0].is_object())
    throw HttpError(400, "the request needs 'inputs' with exactly one input (BYTES image files or FP32 pixels)");
  const InputImages inputs = input_images(context, *model->classifier, request["inputs"][0]);
  request["inputs"] = nullptr;  // the parsed tensor, no longer needed while the model runs
  const std::vector<Prediction> predictions =
      predict_batch_within_budget(context, *model->classifier, inputs.images);
  std::vector<AnsweredScan> answered;
  for (size_t i = 0; i < predictions.size(); ++i)
    answered.push_back({inputs.sha256[i], &inputs.images[i], &predictions[i]});
  record_answers(context, "/v2/models/{name}/infer", res.get_header_value("X-Request-Id"), *model, answered);
  const double inference_ms = predictions.empty() ? 0.0 : predictions.back().inference_ms;
  context.metrics.record_inference(inference_ms / 1000.0, static_cast<int>(predictions.size()));
  nlohmann::json body = {
      {"model_name", context.config.inference_model_name},
      {"model_version", std::to_string(model->number)},
      {"outputs", output_tensors(predictions, model->classifier->class_names(),
                                 request.contains("outputs") ? request["outputs"] : nlohmann::json())}};
  if (request.contains("id") && request["id"].is_string()) body["id"] = request["id"];
  res.set_header("X-Model-Version", model->name);
  send_json(res, 200, body);
}

}  // namespace

void register_inference_protocol_routes(Router& router, ServerContext& context) {
  router.get("/v2", bind_context(context, get_server_metadata));
  router.get("/v2/health/live", bind_context(context, get_live));
  router.get("/v2/health/ready", bind_context(context, get_server_ready));
  for (const std::string model : {"/v2/models/{name}", "/v2/models/{name}/versions/{version}"}) {
    router.get(model, bind_context(context, get_model_metadata));
    router.get(model + "/ready", bind_context(context, get_model_ready));
    router.post(model + "/infer", bind_context(context, post_infer));
  }
}

}  // namespace mriscan
