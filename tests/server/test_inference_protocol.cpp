// The Open Inference Protocol routes (server/routes_inference_protocol.cpp) against a real App on loopback: the
// protocol's request and response shapes (server metadata, health, model metadata and readiness, inference with
// "id" echoed and "outputs" chosen, errors as {"error": ...}), its two inputs giving the same answer as /predict,
// and /predict_batch's limits and metrics.
#include "data/preprocess.h"
#include "server/http_util.h"
#include "tests/support/server_fixture.h"

namespace mriscan::server_test {
namespace {

// CMakeLists.txt's project version, as the server reports it.
const std::string kProjectVersion = [] {
  const std::string cmake = read_bytes(std::string(MRISCAN_SOURCE_DIR) + "/CMakeLists.txt");
  const size_t at = cmake.find("project(mriscan VERSION ");
  return at == std::string::npos ? std::string("?") : cmake.substr(at + 24, cmake.find(' ', at + 24) - at - 24);
}();

class InferenceProtocol : public ServerApi {
 protected:
  httplib::Result infer(const json& request, const std::string& path = "/v2/models/mriscan/infer") {
    return client().Post(path, request.dump(), "application/json");
  }
  static json bytes_input(const std::vector<std::string>& files) {
    json data = json::array();
    for (const std::string& file : files) data.push_back(base64_encode({file.begin(), file.end()}));
    return {{"name", "image"}, {"datatype", "BYTES"}, {"shape", {files.size()}}, {"data", data}};
  }
  // The error form of the protocol: {"error": "<message>"} (the router adds status and request_id).
  static void expect_error(const httplib::Result& result, int status) {
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, status) << result->body;
    const json body = json::parse(result->body);
    EXPECT_TRUE(body.contains("error") && body["error"].is_string() && !body["error"].get<std::string>().empty())
        << result->body;
  }
};

TEST_F(InferenceProtocol, ServerMetadataAndHealth) {
  const json server = body_of(client().Get("/v2"));
  EXPECT_EQ(server["name"], "mriscan");
  EXPECT_EQ(server["version"], kProjectVersion);
  EXPECT_TRUE(server["extensions"].is_array());
  for (const char* probe : {"/v2/health/live", "/v2/health/ready"}) {
    auto answer = client().Get(probe);
    ASSERT_TRUE(answer) << probe;
    EXPECT_EQ(answer->status, 200) << probe;
  }
}

TEST_F(InferenceProtocol, ModelMetadataAndReadinessPerVersion) {
  const json model = body_of(client().Get("/v2/models/mriscan"));
  EXPECT_EQ(model["name"], "mriscan");
  EXPECT_EQ(model["versions"], json::array({"1"}));
  EXPECT_TRUE(model["platform"].is_string());
  for (const char* side : {"inputs", "outputs"})
    for (const json& tensor : model[side]) {
      EXPECT_TRUE(tensor["name"].is_string() && tensor["datatype"].is_string() && tensor["shape"].is_array()) << tensor;
    }
  EXPECT_EQ(model["inputs"][1]["shape"], json::array({-1, 64, 64, 3}));  // the fixture's model is 64 x 64
  EXPECT_EQ(model["parameters"]["class_names"], json(kClasses));
  EXPECT_EQ(body_of(client().Get("/v2/models/mriscan/versions/v1")), model);
  const json ready = body_of(client().Get("/v2/models/mriscan/versions/1/ready"));
  EXPECT_EQ(ready, json({{"name", "mriscan"}, {"ready", true}}));
  expect_error(client().Get("/v2/models/other"), 404);
  expect_error(client().Get("/v2/models/mriscan/versions/7/ready"), 404);
}

// The same scan through /predict, the BYTES input and the FP32 input (its pixels as the server decodes them).
TEST_F(InferenceProtocol, BothInputsAnswerAsPredictDoes) {
  const std::string scan = read_bytes(shared().scans[0]);
  const json predicted = body_of(predict(scan));
  ASSERT_FALSE(predicted["out_of_distribution"].get<bool>()) << predicted;

  const json by_bytes = body_of(infer({{"id", "42"}, {"inputs", {bytes_input({scan})}}}));
  EXPECT_EQ(by_bytes["id"], "42");
  EXPECT_EQ(by_bytes["model_name"], "mriscan");
  EXPECT_EQ(by_bytes["model_version"], "1");
  ASSERT_EQ(by_bytes["outputs"].size(), 4u) << by_bytes;
  const json& probabilities = by_bytes["outputs"][0];
  EXPECT_EQ(probabilities["name"], "probabilities");
  EXPECT_EQ(probabilities["datatype"], "FP32");
  EXPECT_EQ(probabilities["shape"], json::array({1, 4}));
  for (size_t k = 0; k < kClasses.size(); ++k)
    EXPECT_NEAR(probabilities["data"][k].get<double>(), predicted["probabilities"][kClasses[k]].get<double>(), 1e-6);
  EXPECT_EQ(by_bytes["outputs"][1]["data"][0], predicted["predicted_class"]);
  EXPECT_EQ(by_bytes["outputs"][2]["data"][0], false);
  EXPECT_EQ(by_bytes["outputs"][3]["name"], "prediction_set");  // "": this model file has no conformal scores
  EXPECT_EQ(by_bytes["outputs"][3]["data"][0], "");

  DecodeLimits limits;
  limits.min_decoded_side = 64;  // as the server decodes for a 64 x 64 model
  const Image pixels =
      resize_to_input(decode_image(reinterpret_cast<const uint8_t*>(scan.data()), scan.size(), limits), 64);
  json data = json::array();
  for (uint8_t value : pixels.rgb) data.push_back(static_cast<float>(value));
  const json by_pixels = body_of(infer(
      {{"inputs", {{{"name", "pixels"}, {"datatype", "FP32"}, {"shape", {1, 64, 64, 3}}, {"data", data}}}},
       {"outputs", {{{"name", "class"}}, {{"name", "probabilities"}}}}}));
  ASSERT_EQ(by_pixels["outputs"].size(), 2u) << by_pixels;  // only the outputs asked for, in that order
  EXPECT_EQ(by_pixels["outputs"][0]["name"], "class");
  EXPECT_EQ(by_pixels["outputs"][0]["data"][0], predicted["predicted_class"]);
  EXPECT_EQ(by_pixels["outputs"][1]["data"], probabilities["data"]);
  EXPECT_FALSE(by_pixels.contains("id"));
}

TEST_F(InferenceProtocol, BatchesAnswerPerImageAsPredictDoes) {
  const std::vector<std::string> files = {read_bytes(shared().scans[1]), noise_png(9, 64, 64)};
  const json answer = body_of(infer({{"inputs", {bytes_input(files)}}}));
  ASSERT_EQ(answer["outputs"].size(), 4u) << answer;
  EXPECT_EQ(answer["outputs"][0]["shape"], json::array({2, 4}));
  EXPECT_EQ(answer["outputs"][0]["data"].size(), 8u);
  for (size_t i = 0; i < files.size(); ++i) {
    const json predicted = body_of(predict(files[i]));
    const bool withheld = predicted["out_of_distribution"];
    EXPECT_EQ(answer["outputs"][2]["data"][i], withheld);
    // An input out of distribution gets no class and no probabilities, as /predict withholds them.
    EXPECT_EQ(answer["outputs"][1]["data"][i], withheld ? json("") : predicted["predicted_class"]);
    for (size_t k = 0; k < kClasses.size(); ++k)
      EXPECT_NEAR(answer["outputs"][0]["data"][i * 4 + k].get<double>(),
                  withheld ? 0.0 : predicted["probabilities"][kClasses[k]].get<double>(), 1e-6);
  }
}

TEST_F(InferenceProtocol, ErrorsUseTheProtocolsForm) {
  // The protocol's own example request: two inputs of types this model does not take.
  const json example = json::parse(R"({"id": "42", "inputs": [
      {"name": "input0", "shape": [2, 2], "datatype": "UINT32", "data": [1, 2, 3, 4]},
      {"name": "input1", "shape": [3], "datatype": "BOOL", "data": [true]}],
      "outputs": [{"name": "output0"}]})");
  expect_error(infer(example), 400);
  json one = example;
  one["inputs"].erase(1);
  expect_error(infer(one), 400);  // UINT32
  const std::string scan = read_bytes(shared().scans[0]);
  json wrong_output = {{"inputs", {bytes_input({scan})}}, {"outputs", {{{"name", "output0"}}}}};
  expect_error(infer(wrong_output), 400);
  json bad_base64 = {{"inputs", {bytes_input({scan})}}};
  bad_base64["inputs"][0]["data"][0] = "not base64!";
  expect_error(infer(bad_base64), 400);
  json wrong_shape = {{"inputs", {{{"name", "pixels"}, {"datatype", "FP32"}, {"shape", {1, 8, 8, 3}},
                                   {"data", std::vector<float>(192, 1.0f)}}}}};
  expect_error(infer(wrong_shape), 400);
  json out_of_range = {{"inputs", {{{"name", "pixels"}, {"datatype", "FP32"}, {"shape", {1, 64, 64, 3}},
                                    {"data", std::vector<float>(64 * 64 * 3, 300.0f)}}}}};
  expect_error(infer(out_of_range), 400);
  expect_error(infer({{"inputs", {bytes_input({scan, scan, scan, scan, scan})}}}), 413);  // --max-batch is 4
  expect_error(infer({{"inputs", {bytes_input({"GIF89a"})}}}), 415);
  expect_error(infer({{"inputs", {bytes_input({scan})}}}, "/v2/models/other/infer"), 404);
  expect_error(infer({{"inputs", {bytes_input({scan})}}}, "/v2/models/mriscan/versions/9/infer"), 404);
  expect_error(client().Post("/v2/models/mriscan/infer", "{", "application/json"), 400);
}

// JSON costs many times its size once parsed: a body over 8 MB is refused unparsed, even under the body limit.
TEST_F(InferenceProtocol, LargeJsonBodiesAreRefusedUnparsed) {
  restart([](ServerConfig& c) { c.max_body_bytes = 16u << 20; });
  std::string zeros = "[";
  for (int i = 0; i < (9 << 19); ++i) zeros += "0,";
  zeros.back() = ']';
  auto answer = client().Post("/v2/models/mriscan/infer", zeros, "application/json");
  expect_error(answer, 413);
  EXPECT_NE(answer->body.find("BYTES"), std::string::npos) << answer->body;
}

TEST_F(InferenceProtocol, CountedInTheMetricsUnderItsRoute) {
  auto answered = infer({{"inputs", {bytes_input({read_bytes(shared().scans[0])})}}});
  ASSERT_EQ(answered->status, 200) << answered->body;
  const std::string metrics = client().Get("/metrics")->body;
  EXPECT_NE(metrics.find("route=\"/v2/models/{name}/infer\",method=\"POST\",status=\"200\""), std::string::npos)
      << metrics;
}

}  // namespace
}  // namespace mriscan::server_test
