// Faults and races: the retraining worker under database errors, a cancel after the last batch, a
// retrain that finishes after an operator's rollback, concurrent uploads of one scan (also two stores on one state,
// one failing between the other's file and row), a locked database, a full
// disk (a small tmpfs, as root), `kill -9` during uploads and activations, and the admin token kept off the
// command line. Each asserts that nothing stored is lost or half-written and that the previous model serves.
#include <sys/mount.h>

#include <atomic>
#include <regex>
#include <set>

#include "io/atomic_file.h"
#include "server/state/sqlite_database.h"
#include "tests/support/temp_dir.h"
#include "tests/support/latch.h"
#include "server/state/job_queue.h"
#include "tests/support/serve_process.h"

namespace mriscan::server_test {
namespace {

// ---------------------------------------------------------------------------------------------------------------
// The job queue on its own, with a runner the test controls.

std::string job_status(JobQueue& jobs, int64_t id, double timeout = 30.0) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout);
  std::string status;
  while (std::chrono::steady_clock::now() < deadline) {
    status = jobs.get(id)->value("status", "");
    if (status == "completed" || status == "failed" || status == "cancelled") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return status;
}

TEST(JobQueueFaults, BusyDatabaseDelaysButRecordsTheResult) {
  TempDir dir("jobs_busy2");
  SqliteDatabase db(dir / "jobs.db", 50);
  Latch trained;
  JobQueue jobs(db, [&](const JobContext&) -> std::optional<nlohmann::json> {
    trained.wait();
    return nlohmann::json{{"ok", true}};
  });
  const int64_t id = jobs.submit({{"epochs", 1}});
  while (jobs.get(id)->value("status", "") != "running") std::this_thread::sleep_for(std::chrono::milliseconds(10));
  // Another connection holds the write lock while the job finishes: finish() fails with SQLITE_BUSY (before the
  // fix that exception left the catch block: std::terminate).
  SqliteDatabase other(dir / "jobs.db", 50);
  std::thread holder([&] {
    try {
      other.transaction([&](Database::Session&) {
        trained.release();
        std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // finish() retries meanwhile
        throw std::runtime_error("roll back");
      });
    } catch (const std::runtime_error&) {
    }
  });
  holder.join();
  EXPECT_EQ(job_status(jobs, id), "completed");
  EXPECT_EQ(jobs.get(id)->at("result")["ok"], true);
}

TEST(JobQueueFaults, CancelAfterTheLastBatchCancelsOrIsRefused) {
  TempDir dir("jobs_cancel");
  SqliteDatabase db(dir / "jobs.db");
  Latch trained, may_commit;
  std::atomic<bool> committed{false};
  JobQueue jobs(db, [&](const JobContext& job) -> std::optional<nlohmann::json> {
    trained.release();  // the last batch is done: the trainer no longer looks at the cancel flag
    may_commit.wait();
    if (!job.begin_commit()) return std::nullopt;
    committed = true;
    return nlohmann::json{{"activated", true}};
  });
  const int64_t id = jobs.submit({{"epochs", 1}});
  trained.wait();
  EXPECT_EQ(jobs.cancel(id), CancelOutcome::kCancelling);  // 202 ...
  may_commit.release();
  EXPECT_EQ(job_status(jobs, id), "cancelled");  // ... and the job really ends cancelled
  EXPECT_FALSE(committed);
}

TEST(JobQueueFaults, CancelAfterCommitStartedIsRefused) {
  TempDir dir("jobs_commit");
  SqliteDatabase db(dir / "jobs.db");
  Latch committing, finish;
  JobQueue jobs(db, [&](const JobContext& job) -> std::optional<nlohmann::json> {
    EXPECT_TRUE(job.begin_commit());
    committing.release();
    finish.wait();
    return nlohmann::json{{"activated", true}};
  });
  const int64_t id = jobs.submit({{"epochs", 1}});
  committing.wait();
  EXPECT_EQ(jobs.cancel(id), CancelOutcome::kFinishing);  // 409, not a 202 that would not be honoured
  finish.release();
  EXPECT_EQ(job_status(jobs, id), "completed");
}

TEST(DatabaseFaults, FullDatabaseIsStorageFullAndChangesNothing) {
  TempDir dir("db_full");
  SqliteDatabase db(dir / "full.db");
  db.exec("CREATE TABLE t (v TEXT)");
  db.exec("PRAGMA max_page_count = 8");  // the file may not grow past 8 pages: SQLITE_FULL, as on a full disk
  const std::string row(2000, 'x');
  int stored = 0;
  try {
    for (; stored < 100; ++stored)
      db.transaction([&](Database::Session& session) { session.exec("INSERT INTO t (v) VALUES (?)", {row}); });
    FAIL() << "100 rows of 2 KB fitted into 8 pages";
  } catch (const StorageFullError& error) {
    EXPECT_NE(std::string(error.what()).find("full"), std::string::npos) << error.what();
  }
  EXPECT_EQ(db.query("SELECT COUNT(*) AS n FROM t").at(0).integer("n"), stored);  // the failed one rolled back
}

// ---------------------------------------------------------------------------------------------------------------
// Two writers of one scan on one state (as two replicas' stores are), interleaved step by step.

TEST(UploadFaults, AFailedWriterNeverDeletesTheFileAnotherWriterRecords) {
  TempDir dir("uploads_interleaved");
  SqliteDatabase db_a(dir / "state.db"), db_b(dir / "state.db");
  UploadStore a(db_a, dir / "uploads", DecodeLimits{}), b(db_b, dir / "uploads", DecodeLimits{});
  const std::vector<UploadFile> files = {{"s.png", noise_png(42)}};
  // A writes the scan's file; B, seeing no row yet, writes it too (a rename over A's) and is about to commit.
  UploadStore::Prepared from_a = a.prepare(files, "glioma", kClasses);
  UploadStore::Prepared from_b = b.prepare(files, "glioma", kClasses);
  // A's row transaction fails (a trigger on A's connection alone refuses its insert), and A cleans up.
  db_a.exec("CREATE TEMP TRIGGER refuse_a BEFORE INSERT ON uploads BEGIN SELECT RAISE(ABORT, 'forced'); END");
  EXPECT_THROW(a.commit(from_a), std::runtime_error);
  const std::vector<UploadItem> stored = b.commit(from_b);
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].status, "stored");
  // B's row is recorded, so its file must be there, byte for byte.
  EXPECT_EQ(db_b.query("SELECT COUNT(*) AS n FROM uploads").at(0).integer("n"), 1);
  const std::string on_disk = read_bytes((fs::path(dir / "uploads") / stored[0].sha256).string());
  EXPECT_TRUE(on_disk == files[0].bytes) << on_disk.size() << " bytes on disk, " << files[0].bytes.size() << " sent";
  // And a failed writer alone still leaves nothing behind.
  const std::vector<UploadFile> other = {{"t.png", noise_png(43)}};
  UploadStore::Prepared alone = a.prepare(other, "glioma", kClasses);
  EXPECT_THROW(a.commit(alone), std::runtime_error);
  EXPECT_FALSE(fs::exists(fs::path(dir / "uploads") / alone.checked.at(0).item.sha256));
}

// ---------------------------------------------------------------------------------------------------------------
// The service.

class ServerFaults : public ServerApi {};

TEST_F(ServerFaults, RetrainFinishingAfterARollbackDoesNotActivate) {
  // v2 is registered; the retrain starts from v1; while it runs, the operator activates v2.
  app_->registry().register_file(shared().model_b, "test");
  auto submitted = client().Post("/retrain", admin_headers(), R"({"epochs": 2})", "application/json");
  ASSERT_TRUE(submitted);
  ASSERT_EQ(submitted->status, 202) << submitted->body;
  const int64_t id = body_of(submitted)["job_id"];
  for (int i = 0; i < 600 && body_of(client().Get("/retrain_status/" + std::to_string(id)))["status"] != "running";
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto activated = client().Post("/models/v2/activate", admin_headers(), "", "text/plain");
  ASSERT_TRUE(activated);
  ASSERT_EQ(activated->status, 200) << activated->body;
  json job = wait_for_job(client(), id);
  ASSERT_EQ(job["status"], "completed") << job.dump();
  EXPECT_EQ(job["result"]["activated"], false) << job.dump();
  EXPECT_NE(job["result"]["activation_reason"].get<std::string>().find("operator"), std::string::npos);
  EXPECT_EQ(body_of(client().Get("/health"))["model_version"], "v2");
  EXPECT_EQ(body_of(client().Get("/models"))["models"].size(), 3u);  // the candidate is registered
}

TEST_F(ServerFaults, ConcurrentUploadsOfOneScanStoreItOnce) {
  for (int round = 0; round < 10; ++round) {
    const std::string scan = noise_png(1000 + round);
    std::vector<json> answers(4);
    std::vector<std::thread> clients;
    for (int c = 0; c < 4; ++c)
      clients.emplace_back([&, c] {  // four clients at once, each on its own connection
        httplib::Client own("127.0.0.1", port_);
        httplib::MultipartFormDataItems items = {{"files", scan, "s.png", "image/png"}, {"label", "glioma", "", ""}};
        answers[c] = body_of(own.Post("/upload_training_data", admin_headers(), items));
      });
    for (auto& t : clients) t.join();
    int stored = 0;
    for (const json& a : answers) stored += a.value("stored", 0);
    EXPECT_EQ(stored, 1) << "round " << round;
    const std::string sha = answers[0]["files"][0]["sha256"];
    EXPECT_EQ(read_bytes((state_ / "uploads" / sha).string()), scan) << "round " << round;
  }
  for (const auto& entry : fs::directory_iterator(state_ / "uploads"))
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
}

TEST_F(ServerFaults, LockedDatabaseIs503AndNothingIsStored) {
  restart([](ServerConfig& c) { c.db_busy_timeout_ms = 200; });
  SqliteDatabase other((state_ / "mriscan.db").string(), 200);
  std::atomic<bool> locked{false};
  std::thread holder([&] {
    try {
      other.transaction([&](Database::Session&) {
        locked = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));
        throw std::runtime_error("release");
      });
    } catch (const std::runtime_error&) {
    }
  });
  while (!locked) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  httplib::MultipartFormDataItems items = {{"files", noise_png(7), "s.png", "image/png"}, {"label", "glioma", "", ""}};
  auto busy = client().Post("/upload_training_data", admin_headers(), items);
  holder.join();
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->status, 503) << busy->body;
  EXPECT_EQ(busy->get_header_value("Retry-After"), "1");
  EXPECT_EQ(body_of(client().Get("/stats"))["uploads"], 0);
  auto again = client().Post("/upload_training_data", admin_headers(), items);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 201) << again->body;
}

// A tmpfs of a few MB as the state directory, filled up: needs root (mount); skipped otherwise.
class FullDisk : public ::testing::Test {
 protected:
  void SetUp() override {
    if (shared().scans.empty()) GTEST_SKIP() << "shared dataset not found";
    mount_point_ = shared().root / "full_disk";
    fs::create_directories(mount_point_);
    if (::mount("tmpfs", mount_point_.c_str(), "tmpfs", 0, "size=8m") != 0)
      GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << std::strerror(errno);
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) ::umount2(mount_point_.c_str(), MNT_DETACH);
  }
  // Fills the file system; returns the filler's path.
  std::string fill() {
    const std::string filler = (mount_point_ / "filler").string();
    std::ofstream out(filler, std::ios::binary);
    const std::string block(4096, 'x');
    while (out.write(block.data(), block.size())) {
    }
    return filler;
  }
  fs::path mount_point_;
  bool mounted_ = false;
};

TEST_F(FullDisk, UploadsAndRetrainsFailCleanlyAndThePreviousModelServes) {
  ServerConfig config = base_config(mount_point_ / "state", shared().model_a);
  App app(config);
  httplib::Client client("127.0.0.1", app.start());
  client.set_read_timeout(120, 0);
  const std::string filler = fill();

  httplib::MultipartFormDataItems items = {{"files", noise_png(11, 200, 200), "s.png", "image/png"},
                                           {"label", "glioma", "", ""}};
  auto upload = client.Post("/upload_training_data", admin_headers(), items);
  ASSERT_TRUE(upload);
  EXPECT_EQ(upload->status, 507) << upload->body;
  EXPECT_NE(body_of(upload)["error"].get<std::string>().find("disk is full"), std::string::npos);
  EXPECT_EQ(body_of(client.Get("/stats"))["uploads"], 0);
  for (const auto& entry : fs::directory_iterator(mount_point_ / "state" / "uploads"))
    ADD_FAILURE() << "left behind: " << entry.path();

  // A retrain cannot write its checkpoints or its model: the job fails, saying why; v1 keeps serving.
  auto submitted = client.Post("/retrain", admin_headers(), R"({"epochs": 1})", "application/json");
  if (submitted && submitted->status == 202) {
    json job = wait_for_job(client, body_of(submitted)["job_id"]);
    EXPECT_EQ(job["status"], "failed") << job.dump();
  } else {
    ASSERT_TRUE(submitted);
    EXPECT_EQ(submitted->status, 507) << submitted->body;  // the job row itself did not fit
  }
  auto prediction = client.Post("/predict", one_file("file", read_bytes(shared().scans[0])));
  ASSERT_TRUE(prediction);
  EXPECT_EQ(prediction->status, 200);
  EXPECT_EQ(body_of(prediction)["model_version"], "v1");

  // Space again: the same upload succeeds without a restart.
  fs::remove(filler);
  auto again = client.Post("/upload_training_data", admin_headers(), items);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 201) << again->body;
  app.stop();
}

// ---------------------------------------------------------------------------------------------------------------
// The real binary, killed at bad moments.

TEST(ServerKill, KillNineDuringUploadsAndActivationsLosesNothing) {
  if (shared().scans.empty()) GTEST_SKIP() << "shared dataset not found";
  if (!fs::exists(ServeProcess::binary())) GTEST_SKIP() << "mriscan not built";
  fs::path state = shared().root / "state_kill_uploads";
  fs::remove_all(state);
  ServeProcess server(state);
  server.start();
  ASSERT_TRUE(server.wait_ready());
  {
    httplib::Client client("127.0.0.1", server.port());
    ASSERT_TRUE(client.Post("/models/v1/activate", admin_headers(), "", "text/plain"));
  }
  // Uploads and activations (each a load, a committed flag and a swap) run until the kill.
  std::atomic<bool> stop{false};
  std::atomic<int> accepted{0};
  auto uploader = [&](int seed) {
    httplib::Client client("127.0.0.1", server.port());
    for (int i = 0; !stop; ++i) {
      httplib::MultipartFormDataItems items = {{"files", noise_png(seed * 100000 + i, 120, 120), "s.png", "image/png"},
                                               {"label", "glioma", "", ""}};
      auto r = client.Post("/upload_training_data", admin_headers(), items);
      if (r && r->status == 201) ++accepted;
    }
  };
  auto activator = [&] {
    httplib::Client client("127.0.0.1", server.port());
    while (!stop) client.Post("/models/v1/activate", admin_headers(), "", "text/plain");
  };
  std::thread a(uploader, 1), b(uploader, 2), c(activator);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_TRUE(WIFSIGNALED(server.kill(SIGKILL)));
  stop = true;
  a.join(), b.join(), c.join();
  ASSERT_GT(accepted.load(), 0);

  server.start();
  ASSERT_TRUE(server.wait_ready());
  // Every recorded upload has its complete file; no temporary is left; at least every acknowledged one is there.
  SqliteDatabase db((state / "mriscan.db").string());
  auto rows = db.query("SELECT sha256, bytes FROM uploads");
  EXPECT_GE(static_cast<int>(rows.size()), accepted.load());
  for (const SqlRow& row : rows) {
    const std::string bytes = read_bytes((state / "uploads" / row.text("sha256")).string());
    EXPECT_EQ(static_cast<int64_t>(bytes.size()), row.integer("bytes")) << row.text("sha256");
    EXPECT_NO_THROW(decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  }
  EXPECT_EQ(db.query("SELECT number FROM models WHERE active = 1").size(), 1u);
  httplib::Client client("127.0.0.1", server.port());
  auto prediction = client.Post("/predict", one_file("file", read_bytes(shared().scans[0])));
  ASSERT_TRUE(prediction);
  EXPECT_EQ(prediction->status, 200);
  EXPECT_EQ(WEXITSTATUS(server.kill(SIGTERM)), 0);
  // A temporary the kill left behind is young, so the start-up sweep keeps it (it could be another replica's
  // upload in flight); once it is an hour old, the next start removes it, and every file left has its row.
  for (const auto& entry : fs::directory_iterator(state / "uploads"))
    fs::last_write_time(entry.path(), fs::file_time_type::clock::now() - std::chrono::hours(2));
  server.start();
  ASSERT_TRUE(server.wait_ready());
  std::set<std::string> recorded;
  for (const SqlRow& row : db.query("SELECT sha256 FROM uploads")) recorded.insert(row.text("sha256"));
  for (const auto& entry : fs::directory_iterator(state / "uploads"))
    EXPECT_TRUE(recorded.count(entry.path().filename().string())) << "left behind: " << entry.path();
  EXPECT_EQ(WEXITSTATUS(server.kill(SIGTERM)), 0);
}

TEST(ServerToken, NeverOnTheCommandLineNorInTheLog) {
  if (shared().scans.empty()) GTEST_SKIP() << "shared dataset not found";
  if (!fs::exists(ServeProcess::binary())) GTEST_SKIP() << "mriscan not built";
  fs::path state = shared().root / "state_token";
  fs::remove_all(state);
  // No token given: one is generated into STATE/admin_token (0600), and only its location is printed.
  ServeProcess generated(state, {}, /*token_in_environment=*/false);
  generated.start();
  ASSERT_TRUE(generated.wait_ready());
  const std::string token = read_bytes((state / "admin_token").string());
  ASSERT_GE(token.size(), 16u);
  EXPECT_EQ(fs::status(state / "admin_token").permissions() & (fs::perms::group_all | fs::perms::others_all),
            fs::perms::none);
  const std::string cmdline = read_bytes("/proc/" + std::to_string(generated.pid()) + "/cmdline");
  EXPECT_EQ(cmdline.find(token), std::string::npos);
  httplib::Client client("127.0.0.1", generated.port());
  auto ok = client.Post("/retrain", {{"Authorization", "Bearer " + token}}, R"({"epochs": 0})", "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 400) << ok->body;  // authorised; epochs 0 is invalid
  generated.kill(SIGTERM);
  EXPECT_EQ(generated.log().find(token), std::string::npos) << generated.log();
  EXPECT_NE(generated.log().find("admin_token"), std::string::npos) << generated.log();

  // A token file.
  const std::string file = (shared().root / "token.txt").string();
  std::ofstream(file) << "file-token-0123456789\n";
  ServeProcess from_file(state, {"--admin-token-file", file}, false);
  from_file.start();
  ASSERT_TRUE(from_file.wait_ready());
  httplib::Client second("127.0.0.1", from_file.port());
  auto with_file = second.Post("/retrain", {{"Authorization", "Bearer file-token-0123456789"}}, R"({"epochs": 0})",
                               "application/json");
  ASSERT_TRUE(with_file);
  EXPECT_EQ(with_file->status, 400);
  auto with_old = second.Post("/retrain", {{"Authorization", "Bearer " + token}}, R"({"epochs": 0})",
                              "application/json");
  ASSERT_TRUE(with_old);
  EXPECT_EQ(with_old->status, 403);
  from_file.kill(SIGTERM);
}

}  // namespace
}  // namespace mriscan::server_test
