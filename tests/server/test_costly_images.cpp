// Costly images against a real App on loopback (issue 30): a small progressive JPEG with hundreds of refinement
// scans costs far more CPU than its bytes suggest, so every request has a decode budget (io/decode_budget.h) and
// image work runs inside the thread budget (server/thread_budget.h). A hostile batch is refused early with 413
// naming the limit, a full batch of dataset scans still passes, and decoding waits for a core like inference does.
// What it is not: the budget's accounting in detail (tests/io/test_decode_budget.cpp).
#include <future>

#include "tests/support/progressive_jpeg.h"
#include "tests/support/server_fixture.h"

namespace mriscan::server_test {
namespace {

// 443 scans of a black 2000 x 2000 grayscale image: 24 KB, about 0.4 s of CPU to decode, under the per-file scan
// limit (500) and the test configuration's 4 MP image limit. Its cost, 2000 x 2000 x 443 = 1.77 G pixel-scans,
// is seven times the default budget.
std::string hostile_progressive_jpeg() {
  const std::vector<uint8_t> bytes = test_images::progressive_jpeg(Image(2000, 2000), 1, 7);
  return std::string(bytes.begin(), bytes.end());
}

httplib::MultipartFormDataItems files_field(const std::vector<std::string>& contents) {
  httplib::MultipartFormDataItems items;
  for (size_t i = 0; i < contents.size(); ++i)
    items.push_back({"files", contents[i], "scan" + std::to_string(i) + ".jpg", "application/octet-stream"});
  return items;
}

using CostlyImages = ServerApi;

TEST_F(CostlyImages, HostileProgressiveBatchIsRefusedEarlyWith413) {
  const std::string hostile = hostile_progressive_jpeg();
  const auto start = std::chrono::steady_clock::now();
  auto response = client().Post("/predict_batch", files_field({hostile, hostile, hostile, hostile}));
  const double seconds = seconds_since(start);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413) << response->body;
  const json body = body_of(response);
  EXPECT_NE(body.value("error", "").find("pixel-scans"), std::string::npos) << response->body;
  EXPECT_NE(body.value("error", "").find("256000000"), std::string::npos) << "the message names the limit";
  EXPECT_FALSE(body.value("request_id", "").empty());
  // Four full decodes took 1.6 s here; the budget runs out a seventh of the way into the first file.
  EXPECT_LT(seconds, 2.0);
}

TEST_F(CostlyImages, HostileProgressiveFileIsRefusedOnPredict) {
  auto response = predict(hostile_progressive_jpeg());
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413) << response->body;
}

// Uploads decode every file too: the same budget, and nothing is stored when it runs out.
TEST_F(CostlyImages, HostileProgressiveUploadIsRefusedAndNothingStored) {
  const std::string hostile = hostile_progressive_jpeg();
  httplib::MultipartFormDataItems items = files_field({hostile, hostile});
  items.push_back({"label", "glioma", "", ""});
  const auto start = std::chrono::steady_clock::now();
  auto response = client().Post("/upload_training_data", admin_headers(), items);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413) << response->body;
  EXPECT_LT(seconds_since(start), 2.0);
  EXPECT_EQ(body_of(client().Get("/stats"))["uploads"], 0);
  EXPECT_TRUE(fs::is_empty(state_ / "uploads"));
}

TEST_F(CostlyImages, FullBatchOfDatasetScansFitsTheDefaultBudget) {
  restart([](ServerConfig& c) { c.max_batch_files = 64; });
  std::vector<std::string> scans;
  for (size_t i = 0; i < 64; ++i) scans.push_back(read_bytes(shared().scans[i % shared().scans.size()]));
  auto response = client().Post("/predict_batch", files_field(scans));
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200) << response->body;
  EXPECT_EQ(body_of(response).value("predicted", 0), 64);
}

// While the test holds every core of the thread budget, a request whose image cannot even be decoded gets no
// answer: its decoding waits for a core. (Decoded outside the budget, it was refused at once.)
TEST_F(CostlyImages, DecodingWaitsForTheThreadBudget) {
  const std::string scan = read_bytes(shared().scans[0]);
  const std::string truncated = scan.substr(0, scan.size() / 2);
  std::future<httplib::Result> answer;
  {
    ThreadBudget::Lease every_core = app_->context().inference.acquire();
    answer = std::async(std::launch::async, [&] {
      httplib::Client other("127.0.0.1", port_);
      other.set_read_timeout(30, 0);
      return other.Post("/predict", one_file("file", truncated));
    });
    EXPECT_EQ(answer.wait_for(std::chrono::milliseconds(500)), std::future_status::timeout)
        << "the image was decoded while every core of the budget was taken";
  }
  httplib::Result result = answer.get();
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 400) << result->body;
}

}  // namespace
}  // namespace mriscan::server_test
