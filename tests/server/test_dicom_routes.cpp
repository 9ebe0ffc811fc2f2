// DICOM through a real App on loopback (docs/dicom.md), on files made at test time from a dataset scan by
// tests/io/make_dicom_fixtures.py: an 8-bit secondary capture gives exactly the JPEG's probabilities and a 16-bit
// image windowed back onto the JPEG's pixels the same class; /predict (multipart and raw application/dicom),
// /predict_batch, /explain and the Open Inference Protocol's BYTES input take DICOM; refusals are 415 naming the
// transfer syntax or 400 naming the problem; an upload stores the PNG of the pixels, not the file; and no
// identifying attribute of an uploaded and predicted file reaches the state folder (files, SQLite database and its
// WAL), the server's log or any response.
// What it is not: the decoder's own tests (tests/io/test_dicom_image.cpp).
#include <fcntl.h>

#include <cstdio>

#include "data/content_hash.h"
#include "server/http_util.h"
#include "tests/support/dicom_fixtures.h"
#include "tests/support/server_fixture.h"
#include "tests/support/temp_dir.h"

namespace mriscan::server_test {
namespace {

using test_dicom::DicomFixture;
using test_dicom::DicomFixtures;

// The first shared scan, decoded at full size: the source of every DICOM file here.
const Image& source_scan() {
  static const Image image = load_image(shared().scans[0]);
  return image;
}

const DicomFixtures& scan_fixtures() {
  static TempDir dir("dicom_routes");
  static DicomFixtures made(source_scan(), dir.path.string());
  return made;
}

// A random-init model at 224 x 224, the size of the dataset's scans: no JPEG is then decoded at a reduced DCT scale,
// so a JPEG and a DICOM file of the same pixels reach the model as the same image.
std::string model_at_224() {
  static const std::string path = [] {
    MobileNetV2Config config;
    config.width_mult = 0.35f;
    config.num_classes = 4;
    config.seed = 3;
    MobileNetV2 model(config);
    const std::string file = (shared().root / "model_224.safetensors").string();
    json metrics = {{"validation", {{"accuracy", 0.25}}}, {"history", json::array()}};
    save_model_file(file, model, 224, kClasses, {{"temperature", "1.0"}, {"version", "test-224"},
                                                 {"metrics", metrics.dump()}});
    return file;
  }();
  return path;
}

std::string png_of(const Image& image) {
  const std::vector<uint8_t> png = encode_png(image);
  return std::string(png.begin(), png.end());
}

class DicomRoutes : public ServerApi {
 protected:
  void SetUp() override {
    ServerApi::SetUp();
    if (IsSkipped()) return;
    if (!scan_fixtures().ok()) GTEST_SKIP() << scan_fixtures().reason();
  }
  static const DicomFixture& fixture(const std::string& name) {
    const DicomFixture* f = scan_fixtures().find(name);
    if (f == nullptr) throw std::runtime_error("no DICOM fixture " + name + " (gdcmconv missing?)");
    return *f;
  }
  static std::string dicom(const std::string& name) { return read_bytes(fixture(name).file); }
  static httplib::MultipartFormDataItems files_field(const std::vector<std::pair<std::string, std::string>>& files) {
    httplib::MultipartFormDataItems items;
    for (const auto& [name, bytes] : files) items.push_back({"files", bytes, name, "application/dicom"});
    return items;
  }
  httplib::Result upload(const std::string& bytes, const std::string& name = "scan.dcm") {
    httplib::MultipartFormDataItems items = files_field({{name, bytes}});
    items.push_back({"label", "glioma", "", ""});
    return client().Post("/upload_training_data", admin_headers(), items);
  }
  // Largest |p_a - p_b| over the classes of two /predict bodies.
  static double largest_difference(const json& a, const json& b) {
    double largest = 0.0;
    for (const std::string& name : kClasses)
      largest = std::max(largest, std::abs(a["probabilities"][name].get<double>() -
                                           b["probabilities"][name].get<double>()));
    return largest;
  }
};

TEST_F(DicomRoutes, SecondaryCaptureGivesTheJpegsProbabilitiesAndWindowedSixteenBitsItsClass) {
  const Image& scan = source_scan();
  for (size_t i = 0; i < scan.rgb.size(); i += 3)  // the dataset's scans are grey: an 8-bit grey DICOM holds them
    ASSERT_TRUE(scan.rgb[i] == scan.rgb[i + 1] && scan.rgb[i] == scan.rgb[i + 2]);
  restart([](ServerConfig& c) { c.initial_model = model_at_224(); });
  const json jpeg = body_of(predict(read_bytes(shared().scans[0])));
  ASSERT_TRUE(jpeg["probabilities"].is_object()) << jpeg;
  for (const char* name : {"sc8", "mr16_window", "mr16_monochrome1", "jpegls_lossless", "j2k_lossless", "rle"}) {
    if (scan_fixtures().find(name) == nullptr) continue;  // compressed: gdcmconv missing
    const json answer = body_of(predict(dicom(name)));
    ASSERT_TRUE(answer["probabilities"].is_object()) << name << ": " << answer;
    EXPECT_EQ(answer["predicted_class"], jpeg["predicted_class"]) << name;
    // Every one of these windows maps back onto the JPEG's exact pixels: the same input, the same floats.
    const double largest = largest_difference(answer, jpeg);
    EXPECT_EQ(largest, 0.0) << name;
    std::printf("%s: largest |p_dicom - p_jpeg| = %g\n", name, largest);
  }
}

TEST_F(DicomRoutes, BatchExplainRawBodyAndInferenceProtocolTakeDicom) {
  const std::string sc8 = dicom("sc8"), png = png_of(source_scan());
  auto batch = client().Post("/predict_batch", files_field({{"a.dcm", sc8}, {"b.dcm", dicom("mr16_monochrome1")},
                                                            {"c.dcm", dicom("mpeg2")}, {"d.dcm", dicom("truncated")}}));
  ASSERT_TRUE(batch);
  ASSERT_EQ(batch->status, 200) << batch->body;
  const json results = body_of(batch)["results"];
  EXPECT_EQ(body_of(batch)["predicted"], 2);
  EXPECT_EQ(results[0]["probabilities"], results[1]["probabilities"]);  // the same pixels
  EXPECT_NE(results[2].value("error", "").find("1.2.840.10008.1.2.4.100"), std::string::npos) << results[2];
  EXPECT_NE(results[3].value("error", "").find("declares"), std::string::npos) << results[3];

  const json from_png = body_of(predict(png));
  EXPECT_EQ(results[0]["probabilities"], from_png["probabilities"]);
  auto raw = client().Post("/predict", sc8, "application/dicom");
  ASSERT_TRUE(raw);
  EXPECT_EQ(body_of(raw)["probabilities"], from_png["probabilities"]) << raw->body;

  auto explained = client().Post("/explain", one_file("file", sc8, "scan.dcm"));
  auto explained_png = client().Post("/explain", one_file("file", png, "scan.png"));
  ASSERT_TRUE(explained && explained_png);
  ASSERT_EQ(explained->status, 200) << explained->body;
  EXPECT_EQ(explained->get_header_value("Content-Type"), "image/png");
  EXPECT_EQ(explained->body, explained_png->body);  // the same Grad-CAM

  const json request = {{"inputs", {{{"name", "image"}, {"datatype", "BYTES"}, {"shape", {1}},
                                     {"data", {base64_encode({sc8.begin(), sc8.end()})}}}}}};
  const json inferred = body_of(client().Post("/v2/models/mriscan/infer", request.dump(), "application/json"));
  ASSERT_EQ(inferred["outputs"].size(), 4u) << inferred;  // probabilities, class, out_of_distribution, prediction_set
  for (size_t k = 0; k < kClasses.size(); ++k)
    EXPECT_NEAR(inferred["outputs"][0]["data"][k].get<double>(),
                from_png["probabilities"][kClasses[k]].get<double>(), 1e-6);
}

TEST_F(DicomRoutes, RefusalsNameTheTransferSyntaxOrTheProblem) {
  struct Case {
    const char* name;
    int status;
    const char* says;
  };
  for (const Case& c : {Case{"mpeg2", 415, "1.2.840.10008.1.2.4.100 (MPEG2 Main Profile / Main Level)"},
                        Case{"deflated", 415, "Deflated Explicit VR Little Endian"},
                        Case{"rgb", 415, "3 samples per pixel"}, Case{"multi_frame", 400, "3 frames"},
                        Case{"gigabyte_element", 400, "declares 1073741824 bytes"},
                        Case{"deep_sequence", 400, "nested deeper than 8 levels"},
                        Case{"absurd_dimensions", 400, "60000x60000"}, Case{"truncated", 400, "declares"},
                        Case{"short_pixel_data", 400, "pixel data holds"}}) {
    auto answer = predict(dicom(c.name));
    ASSERT_TRUE(answer) << c.name;
    EXPECT_EQ(answer->status, c.status) << c.name << ": " << answer->body;
    EXPECT_NE(body_of(answer).value("error", "").find(c.says), std::string::npos) << c.name << ": " << answer->body;
  }
  auto refused = upload(dicom("mpeg2"));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 415) << refused->body;
  EXPECT_EQ(body_of(client().Get("/stats"))["uploads"], 0);
}

// What is stored is the PNG of the decoded pixels: hashed as such, so a PNG of the same pixels is a duplicate.
TEST_F(DicomRoutes, UploadStoresThePngOfThePixelsNotTheFile) {
  const std::string png = png_of(source_scan());
  auto stored = upload(dicom("sc8"));
  ASSERT_TRUE(stored);
  ASSERT_EQ(stored->status, 201) << stored->body;
  const json item = body_of(stored)["files"][0];
  EXPECT_EQ(item["sha256"], sha256_hex(png));
  EXPECT_EQ(item["width"], 224);
  EXPECT_EQ(read_bytes((state_ / "uploads" / item["sha256"].get<std::string>()).string()), png);
  auto again = upload(png, "same.png");
  ASSERT_TRUE(again);
  EXPECT_EQ(body_of(again)["files"][0]["status"], "duplicate") << again->body;
}

// Everything under `root`, concatenated (files only).
std::string every_byte_under(const fs::path& root) {
  std::string all;
  for (const auto& entry : fs::recursive_directory_iterator(root))
    if (entry.is_regular_file()) all += read_bytes(entry.path().string());
  return all;
}

// Standard error into a file while it lives.
class StderrToFile {
 public:
  explicit StderrToFile(const std::string& path) {
    std::fflush(stderr);
    saved_ = ::dup(2);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, 2);
    ::close(fd);
  }
  ~StderrToFile() {
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
  }

 private:
  int saved_ = -1;
};

TEST_F(DicomRoutes, NoIdentifyingAttributeReachesDiskDatabaseLogOrResponse) {
  const DicomFixture& f = fixture("identified");
  const std::string file = read_bytes(f.file);
  ASSERT_GE(f.markers.size(), 10u);
  for (const std::string& marker : f.markers) ASSERT_NE(file.find(marker), std::string::npos) << marker;
  const std::string log_path = (shared().root / "identified_stderr.log").string();
  std::string responses;
  auto keep = [&](const httplib::Result& result) {
    ASSERT_TRUE(result);
    responses += std::to_string(result->status) + "\n" + result->body + "\n";
    for (const auto& [name, value] : result->headers) responses += name + ": " + value + "\n";
  };
  std::string while_running;
  {
    StderrToFile capture(log_path);
    restart([](ServerConfig& c) { c.log_requests = true; });
    keep(upload(file));
    keep(upload(file));  // a duplicate
    keep(predict(file));
    keep(predict(file, "?gradcam=1"));
    keep(client().Post("/predict", file, "application/dicom"));
    keep(client().Post("/predict_batch", files_field({{"a.dcm", file}, {"b.dcm", file.substr(0, 3000)}})));
    keep(client().Post("/explain", one_file("file", file, "scan.dcm")));
    const json request = {{"inputs", {{{"name", "image"}, {"datatype", "BYTES"}, {"shape", {1}},
                                       {"data", {base64_encode({file.begin(), file.end()})}}}}}};
    keep(client().Post("/v2/models/mriscan/infer", request.dump(), "application/json"));
    for (size_t cut : {200, 700, 1500, 2500})  // damaged copies: every error path
      keep(upload(file.substr(0, cut), "cut.dcm"));
    keep(client().Get("/stats"));
    keep(client().Get("/dataset_stats"));
    while_running = every_byte_under(state_);  // the database's WAL included
    client_.reset();
    app_.reset();
  }
  const std::string log = read_bytes(log_path);
  ASSERT_NE(log.find("POST /upload_training_data"), std::string::npos) << "requests were logged: " << log;
  ASSERT_NE(responses.find("\"stored\":1"), std::string::npos) << responses;
  const std::string after = every_byte_under(state_);
  for (const std::string& marker : f.markers) {
    EXPECT_EQ(while_running.find(marker), std::string::npos) << marker << " in the state folder";
    EXPECT_EQ(after.find(marker), std::string::npos) << marker << " in the state folder after shutdown";
    EXPECT_EQ(log.find(marker), std::string::npos) << marker << " in the log";
    EXPECT_EQ(responses.find(marker), std::string::npos) << marker << " in a response";
  }
}

}  // namespace
}  // namespace mriscan::server_test
