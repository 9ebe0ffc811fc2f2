// Replicas that share nothing but PostgreSQL (separate state directories, a cluster of the test's own), in the
// situations only a database server brings: the same scan uploaded on both hosts at once, a DICOM upload leaving
// nothing of its attributes in the database, the database restarted
// under traffic, and the database killed while a model version is being registered (by a process of the test's,
// and by a replica finishing a retrain). In each, clients get an
// answer (200, or 503 with Retry-After while the database is away; never a 500), nothing half-written is ever
// visible, nothing a client was told is stored goes missing, and both replicas recover without a restart of their
// own. The rules both backends share are in test_replicas.cpp, run on each.
// What it is not: a test of PostgreSQL, or of the SQLite backend's faults (test_faults.cpp).
#include <atomic>
#include <cstdio>
#include <set>
#include <thread>

#include "data/content_hash.h"
#include "server/model_registry.h"
#include "tests/support/dicom_fixtures.h"
#include "tests/support/replica_fixture.h"
#include "tests/support/temp_dir.h"

namespace mriscan::server_test {
namespace {

class PostgresReplicas : public ReplicaFixture {
 protected:
  Backend backend() const override { return Backend::kPostgres; }

  httplib::Result upload(int replica, const std::string& png) {
    httplib::Client client = direct(replica);
    return client.Post("/upload_training_data", admin_headers(),
                       httplib::MultipartFormDataItems{{"files", png, "s.png", "image/png"},
                                                       {"label", "glioma", "", ""}});
  }
  // The status of GET `path` on `replica` once it is not 503 (the database was away moments ago), within 5 s.
  int status_once_recovered(int replica, const std::string& path) {
    int status = 0;
    for (int i = 0; i < 50 && (status == 0 || status == 503); ++i) {
      if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      auto r = direct(replica).Get(path);
      status = r ? r->status : 0;
    }
    return status;
  }
  // Every upload acknowledged is stored, and every row has its bytes in the blobs table, whole (hash matching);
  // rows beyond the acknowledged ones may only be of `attempted` scans (a 503 whose COMMIT had in fact landed).
  void expect_uploads_whole(const std::set<std::string>& acknowledged, const std::set<std::string>& attempted) {
    auto db = state_database();
    std::set<std::string> rows;
    for (const SqlRow& row : db->query("SELECT sha256 FROM uploads")) rows.insert(row.text("sha256"));
    for (const std::string& sha : acknowledged) EXPECT_TRUE(rows.count(sha)) << "acknowledged, not stored: " << sha;
    for (const std::string& sha : rows) EXPECT_TRUE(attempted.count(sha)) << "stored, never sent: " << sha;
    for (const std::string& sha : rows) {
      std::string bytes;
      for (const SqlRow& part : db->query("SELECT bytes FROM blobs WHERE key = ? ORDER BY part", {"uploads/" + sha}))
        bytes += part.text("bytes");
      EXPECT_EQ(sha256_hex(bytes), sha);
    }
    EXPECT_EQ(db->query("SELECT DISTINCT key FROM blobs WHERE key LIKE 'uploads/%'").size(), rows.size())
        << "a blob without its row";
  }
};

TEST_F(PostgresReplicas, TheSameScanUploadedOnBothHostsAtOnceIsStoredOnce) {
  std::set<std::string> stored;
  for (uint32_t round = 0; round < 6; ++round) {
    const std::string png = noise_png(100 + round);
    json answers[2];
    std::thread first([&] { answers[0] = body_of(upload(0, png)); });
    answers[1] = body_of(upload(1, png));
    first.join();
    EXPECT_EQ(answers[0].value("stored", 0) + answers[1].value("stored", 0), 1)
        << answers[0].dump() << answers[1].dump();
    stored.insert(sha256_hex(png));
  }
  expect_uploads_whole(stored, stored);
}

// Every byte PostgreSQL holds for the replicas' database, as pg_dump writes it (bytea in hex).
std::string database_dump(const std::string& url) {
  const std::string command = (*PostgresCluster::bin_dir() / "pg_dump").string() + " --data-only '" + url + "'";
  std::string dump;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    char buffer[65536];
    for (size_t n; (n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0;) dump.append(buffer, n);
    ::pclose(pipe);
  }
  return dump;
}

std::string hex_of(const std::string& text) {
  static const char* kDigits = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : text) hex += {kDigits[c >> 4], kDigits[c & 15]};
  return hex;
}

// A DICOM upload with the database holding the files (docs/dicom.md): the blob is the PNG of the pixels, and no
// identifying attribute of the file is in the database (text or bytea), a replica's state directory or its log.
TEST_F(PostgresReplicas, ADicomUploadStoresThePngOfItsPixelsAndNoAttribute) {
  TempDir dir("dicom_postgres");
  const test_dicom::DicomFixtures fixtures(load_image(shared().scans[0]), dir.path.string());
  if (!fixtures.ok()) GTEST_SKIP() << fixtures.reason();
  const test_dicom::DicomFixture& identified = *fixtures.find("identified");
  const json answer = body_of(upload(0, read_bytes(identified.file)));
  ASSERT_EQ(answer.value("stored", 0), 1) << answer.dump();
  const std::string sha = answer["files"][0]["sha256"];
  expect_uploads_whole({sha}, {sha});
  std::string blob;
  for (const SqlRow& part : state_database()->query("SELECT bytes FROM blobs WHERE key = ? ORDER BY part",
                                                    {"uploads/" + sha}))
    blob += part.text("bytes");
  EXPECT_EQ(blob.rfind("\x89PNG\r\n\x1a\n", 0), 0u) << "the stored bytes are a PNG";
  const std::string dump = database_dump(url_);
  ASSERT_NE(dump.find(sha), std::string::npos) << "pg_dump shows the upload's row";
  std::string files, logs;
  for (const auto& entry : fs::recursive_directory_iterator(state_))
    if (entry.is_regular_file()) files += read_bytes(entry.path().string());
  for (const auto& server : servers_) logs += server->log();
  for (const std::string& marker : identified.markers) {
    EXPECT_EQ(dump.find(marker), std::string::npos) << marker << " in the database";
    EXPECT_EQ(dump.find(hex_of(marker)), std::string::npos) << marker << " in a bytea of the database";
    EXPECT_EQ(files.find(marker), std::string::npos) << marker << " in a state directory";
    EXPECT_EQ(logs.find(marker), std::string::npos) << marker << " in a log";
  }
}

// Traffic on both replicas while the database restarts: predictions never notice (they read no row); state
// requests answer 200 or 503 + Retry-After; every upload answered 201 is stored, whole; afterwards both replicas
// work again by themselves.
TEST_F(PostgresReplicas, ADatabaseRestartUnderTrafficLosesNothingAndBothReplicasRecover) {
  std::atomic<bool> done{false};
  std::mutex mutex;
  std::map<int, int> statuses;          // state requests: status -> count
  std::set<std::string> acknowledged, attempted;  // uploads answered 201, and all uploads sent
  int failed_predictions = 0, predictions = 0;
  std::vector<std::thread> clients;
  for (int replica : {0, 1})
    clients.emplace_back([&, replica] {
      for (uint32_t i = 0; !done; ++i) {
        const std::string png = noise_png(1000 * (replica + 1) + i);
        auto stored = upload(replica, png);
        auto models = direct(replica).Get("/models");
        auto prediction = direct(replica).Post("/predict", one_file("file", read_bytes(shared().scans[0])));
        std::lock_guard<std::mutex> lock(mutex);
        for (const auto* r : {&stored, &models}) {
          const int status = *r ? (*r)->status : 0;
          ++statuses[status];
          if (status == 503) {
            EXPECT_FALSE((*r)->get_header_value("Retry-After").empty());
          }
        }
        attempted.insert(sha256_hex(png));
        if (stored && stored->status == 201) acknowledged.insert(sha256_hex(png));
        ++predictions;
        if (!prediction || prediction->status != 200) ++failed_predictions;
      }
    });
  std::this_thread::sleep_for(std::chrono::seconds(1));
  postgres_cluster().restart();
  std::this_thread::sleep_for(std::chrono::seconds(3));
  done = true;
  for (auto& t : clients) t.join();
  std::string seen;
  for (const auto& [status, count] : statuses) {
    EXPECT_TRUE(status == 200 || status == 201 || status == 503) << count << " answers " << status;
    seen += " " + std::to_string(count) + " x " + std::to_string(status) + ";";
  }
  std::printf("state requests during the restart:%s predictions: %d, all 200\n", seen.c_str(), predictions);
  EXPECT_EQ(failed_predictions, 0) << "of " << predictions;
  ASSERT_FALSE(acknowledged.empty());
  expect_uploads_whole(acknowledged, attempted);
  for (int replica : {0, 1}) {  // no restart of their own
    EXPECT_EQ(status_once_recovered(replica, "/models"), 200);
    auto after = upload(replica, noise_png(77 + replica));
    ASSERT_TRUE(after);
    EXPECT_EQ(after->status, 201) << after->body;
  }
}

// A registration (the file into the blobs table, the row, the activation: one transaction) with the database
// killed at moments from before it starts to after it commits: each time, the version is there whole (its bytes
// hash to the recorded SHA-256) or not at all, clients get 503 while the database is away, and once it is back
// both replicas serve whatever is recorded active.
TEST_F(PostgresReplicas, ADatabaseKilledDuringAModelRegistrationLeavesAllOrNothing) {
  int interrupted = 0;
  for (int delay_ms : {0, 15, 40, 80, 150, 300}) {
    SCOPED_TRACE("killed after " + std::to_string(delay_ms) + " ms");
    std::string outcome = "registered";
    std::thread registering([&] {
      try {
        auto db = state_database();
        ModelRegistry registry(*db, (state_ / "test-process-models").string());
        outcome += " as " + registry.register_file(shared().model_b, "fault test").name();
      } catch (const DatabaseBusyError& error) {  // unreachable database: the outcome is checked below
        outcome = std::string("refused: ") + error.what();
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    postgres_cluster().kill_all();
    registering.join();
    std::printf("killed after %d ms: %.160s\n", delay_ms, outcome.c_str());
    interrupted += outcome.rfind("refused", 0) == 0;
    auto refused = direct(0).Get("/models");
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 503) << refused->body;
    if (delay_ms == 0) {  // what reads no row answers on: predictions, probes and the metrics (saying so)
      auto prediction = direct(0).Post("/predict", one_file("file", read_bytes(shared().scans[0])));
      ASSERT_TRUE(prediction);
      EXPECT_EQ(prediction->status, 200) << prediction->body;
      EXPECT_EQ(direct(1).Get("/v2/health/ready")->status, 200);
      auto metrics = direct(1).Get("/metrics");
      ASSERT_TRUE(metrics);
      EXPECT_EQ(metrics->status, 200);
      EXPECT_NE(metrics->body.find("\nmriscan_database_up 0\n"), std::string::npos) << metrics->body;
    }
    postgres_cluster().start();
    auto db = state_database();
    if (outcome.rfind("registered as v", 0) == 0) {  // a registration reported done is there
      EXPECT_FALSE(db->query("SELECT number FROM models WHERE number = ?", {std::stoll(outcome.substr(15))}).empty());
    }
    for (const SqlRow& row : db->query("SELECT * FROM models")) {
      std::string bytes;
      for (const SqlRow& part : db->query("SELECT bytes FROM blobs WHERE key = ? ORDER BY part", {row.text("path")}))
        bytes += part.text("bytes");
      EXPECT_EQ(sha256_hex(bytes), row.text("sha256")) << "v" << row.integer("number") << " is not whole";
    }
    EXPECT_EQ(db->query("SELECT DISTINCT key FROM blobs WHERE key LIKE 'models/%'").size(),
              db->query("SELECT number FROM models").size())
        << "a model file without its row";
  }
  EXPECT_GT(interrupted, 0) << "no kill came before a registration's commit";
  // Both replicas work again, and follow an activation of the newest version.
  auto db = state_database();
  const int64_t newest = db->query("SELECT MAX(number) AS n FROM models").at(0).integer("n");
  ASSERT_GT(newest, 1) << "no kill came after a registration's commit";
  EXPECT_EQ(status_once_recovered(1, "/models"), 200);
  auto activated =
      direct(1).Post("/models/v" + std::to_string(newest) + "/activate", admin_headers(), "", "text/plain");
  ASSERT_TRUE(activated);
  EXPECT_EQ(activated->status, 200) << activated->body;
  for (int replica : {0, 1}) {
    const auto start = std::chrono::steady_clock::now();
    while (body_of(direct(replica).Get("/health"))["model_version"] != "v" + std::to_string(newest) &&
           seconds_since(start) < 5)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(body_of(direct(replica).Get("/health"))["model_version"], "v" + std::to_string(newest))
        << servers_[replica]->log();
  }
}

// The same for a replica's own registration: the database is killed the moment the retraining job passes its
// point of no return (`committing` in its row), while the replica stages and registers the model. The job ends
// recorded one way or the other once the database is back (completed with its version whole and served by both,
// or failed while saving or registering the model, with nothing registered), without a restart of either replica.
TEST_F(PostgresReplicas, ADatabaseKilledWhileAReplicaRegistersARetrainedModel) {
  httplib::Client a = direct(0);
  const int64_t job = submit(a, 1);
  auto db = state_database();
  bool committing = false;
  for (int i = 0; i < 30000 && !committing; ++i) {
    auto rows = db->query("SELECT committing FROM jobs WHERE id = ? AND status = 'running'", {job});
    committing = !rows.empty() && rows[0].integer("committing") == 1;
    if (!committing) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_TRUE(committing);
  postgres_cluster().kill_all();
  auto refused = direct(1).Get("/retrain_status/" + std::to_string(job));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503) << refused->body;
  std::this_thread::sleep_for(std::chrono::seconds(2));
  postgres_cluster().start();
  json ended = wait_for_job(a, job, 60);
  std::printf("killed at the job's commit: the job ended %s: %s\n", ended["status"].dump().c_str(),
              ended["error"].dump().c_str());
  db = state_database();
  const auto versions = db->query("SELECT number, path, sha256 FROM models ORDER BY number");
  if (ended["status"] == "completed") {
    ASSERT_EQ(versions.size(), 2u);
    std::string bytes;
    const std::string key = versions[1].text("path");
    for (const SqlRow& part : db->query("SELECT bytes FROM blobs WHERE key = ? ORDER BY part", {key}))
      bytes += part.text("bytes");
    EXPECT_EQ(sha256_hex(bytes), versions[1].text("sha256"));
  } else {
    EXPECT_EQ(ended["status"], "failed") << ended.dump();
    const std::string error = ended["error"].dump();  // the steps after `committing`: saving, then registering
    EXPECT_TRUE(error.find("saving the model") != std::string::npos ||
                error.find("registering the model") != std::string::npos) << error;
    EXPECT_EQ(versions.size(), 1u) << "a failed job registered a version";
  }
  const std::string active = "v" + std::to_string(
      db->query("SELECT number FROM models WHERE active = 1").at(0).integer("number"));
  for (int replica : {0, 1}) {
    const auto start = std::chrono::steady_clock::now();
    while (body_of(direct(replica).Get("/health"))["model_version"] != active && seconds_since(start) < 5)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(body_of(direct(replica).Get("/health"))["model_version"], active) << servers_[replica]->log();
  }
}

}  // namespace
}  // namespace mriscan::server_test
