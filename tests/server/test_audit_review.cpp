// The audit trail and the review queue through a real App on loopback: every answer of every prediction route
// recorded with its request id, model version, input hash and answer, never the image; filters, paging, CSV and
// retention; reviews offered for the answers a person should see, bounded, decided once, a label making a
// training upload; the admin token and bad parameters refused. (test_drift_monitor.cpp tests the drift rule.)
#include <set>

#include "data/content_hash.h"
#include "server/http_util.h"
#include "server/state/sqlite_database.h"
#include "tests/support/server_fixture.h"

namespace mriscan::server_test {
namespace {

class AuditAndReview : public ServerApi {
 protected:
  json audit(const std::string& query = "") {
    app_->context().audit.flush();
    auto r = client().Get(("/audit" + query).c_str(), admin_headers());
    EXPECT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    return body_of(r);
  }
  json reviews(const std::string& query = "") {
    app_->context().reviews.flush();
    return body_of(client().Get(("/reviews" + query).c_str(), admin_headers()));
  }
  void review_everything(int max_pending = 500) {
    restart([max_pending](ServerConfig& c) { c.review.below_confidence = 1.01, c.review.max_pending = max_pending; });
  }
};

TEST_F(AuditAndReview, EveryAnswerOfEveryRouteIsRecordedWithoutTheImage) {
  const std::string a = read_bytes(shared().scans[0]), b = read_bytes(shared().scans[1]);
  const json first = body_of(predict(a));
  body_of(predict(a));
  httplib::MultipartFormDataItems batch = {{"files", a, "a.jpg", "image/jpeg"}, {"files", b, "b.jpg", "image/jpeg"}};
  const json batched = body_of(client().Post("/predict_batch", batch));
  ASSERT_EQ(client().Post("/explain", one_file("file", b))->status, 200);
  const std::string b64 = base64_encode(std::vector<uint8_t>(b.begin(), b.end()));
  const std::string infer =
      json{{"inputs", {{{"name", "image"}, {"datatype", "BYTES"}, {"shape", {1}}, {"data", {b64}}}}}}.dump();
  ASSERT_EQ(client().Post("/v2/models/mriscan/infer", infer, "application/json")->status, 200);
  const json rows = audit();
  ASSERT_EQ(rows["count"], 6) << rows.dump();
  std::multiset<std::string> routes;
  for (const json& row : rows["entries"]) {
    routes.insert(row["route"].get<std::string>());
    EXPECT_EQ(row["model_version"], "v1");
    EXPECT_TRUE(row["input_sha256"] == sha256_hex(a) || row["input_sha256"] == sha256_hex(b)) << row.dump();
    std::set<std::string> fields;  // exactly these: nothing of the file (its bytes, its name) beyond its hash
    for (const auto& [field, value] : row.items()) fields.insert(field);
    EXPECT_EQ(fields, (std::set<std::string>{"id", "at", "request_id", "route", "replica", "model_version",
                                             "input_sha256", "answer", "out_of_distribution", "prediction_set",
                                             "confidence"}));
  }
  EXPECT_EQ(routes, (std::multiset<std::string>{"/predict", "/predict", "/predict_batch", "/predict_batch", "/explain",
                                                "/v2/models/{name}/infer"}));
  // The oldest row is the first answer: its request id, answer and confidence as the client got them.
  const json oldest = rows["entries"].back();
  EXPECT_EQ(oldest["request_id"], first["request_id"]);
  EXPECT_EQ(oldest["answer"], first["predicted_class"]);
  EXPECT_NEAR(oldest["confidence"].get<double>(), first["confidence"].get<double>(), 1e-6);
  // Filters and paging.
  EXPECT_EQ(audit("?input_sha256=" + sha256_hex(a))["count"], 3);
  EXPECT_EQ(audit("?request_id=" + batched["request_id"].get<std::string>())["count"], 2);
  EXPECT_EQ(audit("?version=v2")["count"], 0);
  EXPECT_EQ(audit("?from=2000-01-01&to=2000-01-02")["count"], 0);
  const json page = audit("?limit=4");
  ASSERT_EQ(page["count"], 4);
  const json rest = audit("?limit=4&before_id=" + std::to_string(page["next_before_id"].get<int64_t>()));
  EXPECT_EQ(rest["count"], 2);
  EXPECT_TRUE(rest["next_before_id"].is_null());
  // CSV: a header and one line per row.
  auto csv = client().Get("/audit.csv", admin_headers());
  ASSERT_EQ(csv->status, 200);
  EXPECT_EQ(csv->get_header_value("Content-Type"), "text/csv; charset=utf-8");
  EXPECT_EQ(std::count(csv->body.begin(), csv->body.end(), '\n'), 7) << csv->body;
  EXPECT_EQ(csv->body.rfind("id,at,request_id,", 0), 0u);
  // No image in the database: a run of the scan's bytes from its middle is nowhere in the file.
  app_.reset();
  const std::string database =
      read_bytes((state_ / "mriscan.db").string()) + read_bytes((state_ / "mriscan.db-wal").string());
  EXPECT_EQ(database.find(a.substr(a.size() / 2, 48)), std::string::npos);
  EXPECT_EQ(database.find(b.substr(b.size() / 2, 48)), std::string::npos);
}

TEST_F(AuditAndReview, TheTrailNeedsTheTokenAndRefusesBadParameters) {
  EXPECT_EQ(client().Get("/audit")->status, 401);
  EXPECT_EQ(client().Get("/audit.csv")->status, 401);
  EXPECT_EQ(client().Get("/reviews")->status, 401);
  for (const char* query : {"?from=yesterday", "?to=2026-13", "?limit=0", "?limit=1001", "?before_id=-1",
                            "?version=latest", "?from='%20OR%201=1--"}) {
    auto r = client().Get((std::string("/audit") + query).c_str(), admin_headers());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << query << ": " << r->body;
  }
}

TEST_F(AuditAndReview, RowsOlderThanTheRetentionAreDeletedAndOffMeansNone) {
  ServerConfig config = base_config(state_, shared().model_a);
  app_.reset();
  {
    SqliteDatabase db((state_ / "mriscan.db").string());
    db.exec("INSERT INTO audit (at, request_id, route, replica, model_version, input_sha256, answer,"
            " out_of_distribution, confidence) VALUES ('2000-01-01T00:00:00.000Z', 'old', '/predict', 'r', 1, 'x',"
            " 'glioma', 0, 0.9)");
  }
  config.audit.retention_days = 30;
  start(config);
  for (int i = 0; i < 50 && audit("?request_id=old")["count"] != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(audit("?request_id=old")["count"], 0);
  restart([](ServerConfig& c) { c.audit.enabled = false; });
  body_of(predict(read_bytes(shared().scans[0])));
  EXPECT_EQ(audit()["count"], 0);
}

TEST_F(AuditAndReview, AReviewShowsTheScanAndALabelMakesATrainingUpload) {
  review_everything();
  const json answer = body_of(predict(read_bytes(shared().scans[0])));
  const json listed = reviews();
  ASSERT_EQ(listed["reviews"].size(), 1u) << listed.dump();
  const json review = listed["reviews"][0];
  EXPECT_EQ(review["request_id"], answer["request_id"]);
  EXPECT_NE(review["reason"].get<std::string>().find("confidence"), std::string::npos) << review.dump();
  const std::string id = std::to_string(review["id"].get<int64_t>());
  auto image = client().Get(("/reviews/" + id + "/image").c_str(), admin_headers());
  ASSERT_EQ(image->status, 200);
  const Image pixels = decode_image(reinterpret_cast<const uint8_t*>(image->body.data()), image->body.size());
  EXPECT_EQ(pixels.width, app_->registry().active()->classifier->image_size());  // the model's input, not the file
  auto gradcam = client().Get(("/reviews/" + id + "/gradcam").c_str(), admin_headers());
  ASSERT_EQ(gradcam->status, 200) << gradcam->body;
  EXPECT_EQ(gradcam->get_header_value("Content-Type"), "image/png");
  const int64_t uploads_before = body_of(client().Get("/stats"))["uploads"];
  auto decided = client().Post(("/reviews/" + id).c_str(), admin_headers(), R"({"label": "glioma"})",
                               "application/json");
  ASSERT_EQ(decided->status, 200) << decided->body;
  EXPECT_EQ(body_of(decided)["upload"]["sha256"], sha256_hex(image->body));
  EXPECT_EQ(body_of(client().Get("/stats"))["uploads"], uploads_before + 1);
  auto again = client().Post(("/reviews/" + id).c_str(), admin_headers(), R"({"discard": true})", "application/json");
  EXPECT_EQ(again->status, 409);
  EXPECT_EQ(client().Get(("/reviews/" + id + "/image").c_str(), admin_headers())->status, 404);
  EXPECT_EQ(reviews("?status=labelled")["reviews"][0]["label"], "glioma");
  EXPECT_EQ(reviews()["pending"], 0);
}

TEST_F(AuditAndReview, TheQueueIsBoundedAndDecisionsAreChecked) {
  review_everything(/*max_pending=*/2);
  for (int i = 0; i < 4; ++i) body_of(predict(read_bytes(shared().scans[i % shared().scans.size()])));
  const json listed = reviews();
  EXPECT_EQ(listed["pending"], 2);
  EXPECT_EQ(listed["dropped"], 2);
  const std::string id = std::to_string(listed["reviews"][0]["id"].get<int64_t>());
  for (const char* body : {R"({})", R"({"label": "glioma", "discard": true})", R"({"label": "cat"})", R"([1])"}) {
    auto r = client().Post(("/reviews/" + id).c_str(), admin_headers(), body, "application/json");
    EXPECT_EQ(r->status, 400) << body << ": " << r->body;
  }
  EXPECT_EQ(client().Post("/reviews/abc", admin_headers(), R"({"discard": true})", "application/json")->status, 400);
  for (const char* limit : {"0", "501", "4294967296", "2147483648", "-1", "x"})
    EXPECT_EQ(client().Get((std::string("/reviews?limit=") + limit).c_str(), admin_headers())->status, 400) << limit;
  EXPECT_EQ(client().Post("/reviews/999", admin_headers(), R"({"discard": true})", "application/json")->status, 409);
  EXPECT_EQ(client().Post(("/reviews/" + id).c_str(), R"({"discard": true})", "application/json")->status, 401);
  auto discarded =
      client().Post(("/reviews/" + id).c_str(), admin_headers(), R"({"discard": true})", "application/json");
  EXPECT_EQ(discarded->status, 200);
  EXPECT_EQ(reviews()["pending"], 1);
  auto metrics = client().Get("/metrics");
  EXPECT_NE(metrics->body.find("\nmriscan_reviews_dropped_total 2\n"), std::string::npos);
}

}  // namespace
}  // namespace mriscan::server_test
