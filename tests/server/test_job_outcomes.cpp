// What a retraining job's record says against what happened: a job whose lease another replica reaped while it
// was registering its model registers nothing; a job that fails on a file-system error says so without a server
// path and leaves no run folder; a completed job leaves no run folder; and the unauthenticated answers
// (GET /models, /retrain_status, /retrain_jobs) name no server path, even for a job that failed on one.
// The retraining stack is the real one (registry, uploads, retrainer, queue) on the tiny shared dataset; the test
// only chooses the moment at which the other replica acts.
// What it is not: the multi-process tests (test_replicas.cpp) or the queue's database faults (test_faults.cpp).
#include <atomic>

#include "server/retrain_params.h"
#include "server/state/sqlite_database.h"
#include "tests/support/latch.h"
#include "tests/support/server_fixture.h"

namespace mriscan::server_test {
namespace {

// One replica's retraining stack on `state` (v1 imported from the tiny model), whose runner calls `at_commit`
// right after the job's point of no return (training over, its model not yet registered).
class RetrainStack {
 public:
  RetrainStack(const fs::path& state, std::function<void()> at_commit)
      : state_(state), db_((state / "mriscan.db").string()), registry_(db_, (state / "models").string()),
        uploads_(db_, (state / "uploads").string(), DecodeLimits{}),
        retrainer_(registry_, uploads_, settings()), at_commit_(std::move(at_commit)) {
    std::string problems;
    registry_.import_if_empty({{shared().model_a, "initial"}}, problems);
    registry_.open();
    JobQueueOptions options;
    options.owner = "a/test";
    options.heartbeat_seconds = 0.2;
    options.poll_seconds = 0.1;
    options.runs_dir = (state / "runs").string();
    jobs_ = std::make_unique<JobQueue>(db_, [this](const JobContext& job) { return run(job); }, options);
  }

  int64_t submit() { return jobs_->submit(validate_retrain_params({{"epochs", 1}})); }
  // Waits until the runner has returned (or thrown) and the queue has recorded what it saw.
  nlohmann::json wait_until_returned(int64_t id) {
    while (!returned_) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    jobs_->stop();
    return *jobs_->get(id);
  }
  ModelRegistry& registry() { return registry_; }

 private:
  static RetrainSettings settings() {
    RetrainSettings settings;
    settings.data_dir = shared().data_dir;
    settings.rule = ActivationRule::kAlways;
    settings.batch_size = 8;
    return settings;
  }
  std::optional<nlohmann::json> run(const JobContext& job) {
    JobContext paused = job;
    paused.begin_commit = [this, begin = job.begin_commit] {
      const bool committing = begin();
      at_commit_();
      return committing;
    };
    struct Returned {
      std::atomic<bool>& flag;
      ~Returned() { flag = true; }
    } returned{returned_};
    return retrainer_.run(paused);
  }

  fs::path state_;
  SqliteDatabase db_;
  ModelRegistry registry_;
  UploadStore uploads_;
  Retrainer retrainer_;
  std::function<void()> at_commit_;
  std::atomic<bool> returned_{false};
  std::unique_ptr<JobQueue> jobs_;
};

fs::path fresh_state(const std::string& name) {
  const fs::path state = shared().root / name;
  fs::remove_all(state);
  fs::create_directories(state);
  return state;
}

TEST(JobOutcomes, ALeaseLostWhileRegisteringRegistersNothingAndTheJobStaysFailed) {
  if (shared().scans.empty()) GTEST_SKIP() << "shared dataset not found";
  const fs::path state = fresh_state("outcome_lease");
  Latch at_commit, reaped;
  RetrainStack owner(state, [&] {
    at_commit.release();
    reaped.wait();
  });
  const int64_t id = owner.submit();
  at_commit.wait();
  {  // Another replica finds the lease expired (a lease of -1 s: every heartbeat is too old) and records the job.
    SqliteDatabase other((state / "mriscan.db").string());
    JobQueueOptions options;
    options.owner = "b/test";
    options.lease_seconds = -1.0;
    JobQueue reaper(other, [](const JobContext&) { return std::nullopt; }, options);
  }
  reaped.release();
  const nlohmann::json job = owner.wait_until_returned(id);
  EXPECT_EQ(job["status"], "failed") << job.dump();
  EXPECT_NE(job["error"].get<std::string>().find("interrupted"), std::string::npos) << job.dump();
  EXPECT_TRUE(job["result"].is_null()) << job.dump();
  // One outcome only: the owner registered and activated nothing.
  EXPECT_EQ(owner.registry().list().size(), 1u);
  EXPECT_EQ(owner.registry().active()->name, "v1");
  for (const auto& entry : fs::directory_iterator(state / "models"))
    EXPECT_EQ(entry.path().filename(), "v1.safetensors") << "left behind: " << entry.path();
  EXPECT_FALSE(fs::exists(state / "runs" / ("job-" + std::to_string(id))));
}

TEST(JobOutcomes, AJobFailingOnAFileSystemErrorSaysWhatFailedWithoutAPathAndLeavesNoRunFolder) {
  if (shared().scans.empty()) GTEST_SKIP() << "shared dataset not found";
  const fs::path state = fresh_state("outcome_fs_error");
  // At the point of no return, a regular file takes the place of the models folder: saving the model fails with
  // an error whose text names the folder.
  RetrainStack owner(state, [&] {
    fs::rename(state / "models", state / "models.aside");
    std::ofstream(state / "models") << "in the way";
  });
  const int64_t id = owner.submit();
  const nlohmann::json job = owner.wait_until_returned(id);
  fs::remove(state / "models");
  fs::rename(state / "models.aside", state / "models");
  ASSERT_EQ(job["status"], "failed") << job.dump();
  const std::string error = job["error"];
  EXPECT_EQ(error.find(state.string()), std::string::npos) << error;
  EXPECT_EQ(error.find("filesystem error"), std::string::npos) << error;
  EXPECT_NE(error.find("saving the model"), std::string::npos) << error;
  EXPECT_NE(error.find("job " + std::to_string(id)), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(state / "runs" / ("job-" + std::to_string(id))));
  EXPECT_EQ(owner.registry().list().size(), 1u);
}

class PublicAnswers : public ServerApi {};

// Every unauthenticated answer about models and jobs, as one text.
std::string public_answers(httplib::Client& client, const std::vector<int64_t>& jobs) {
  std::string text = client.Get("/models")->body + client.Get("/retrain_jobs")->body;
  for (int64_t id : jobs) text += client.Get("/retrain_status/" + std::to_string(id))->body;
  return text;
}

TEST_F(PublicAnswers, NameNoServerPathEvenForAJobThatFailedOnOne) {
  auto submit = [&] {
    auto r = client().Post("/retrain", admin_headers(), R"({"epochs": 1})", "application/json");
    EXPECT_TRUE(r && r->status == 202);
    return r ? body_of(r).value("job_id", int64_t{0}) : int64_t{0};
  };
  const int64_t completed = submit();
  ASSERT_EQ(wait_for_job(client(), completed)["status"], "completed");
  EXPECT_FALSE(fs::exists(state_ / "runs" / ("job-" + std::to_string(completed))));
  // A regular file where the run folders are created: the next job fails on a file-system error naming it.
  fs::remove_all(state_ / "runs");
  std::ofstream(state_ / "runs") << "in the way";
  const int64_t failed = submit();
  const json job = wait_for_job(client(), failed);
  ASSERT_EQ(job["status"], "failed") << job.dump();
  EXPECT_NE(job["error"].get<std::string>().find("server log"), std::string::npos) << job.dump();

  const std::string text = public_answers(client(), {completed, failed});
  for (const std::string& secret : {shared().root.string(), state_.string(), shared().data_dir,
                                    std::string("filesystem error"), std::string("\"data_dir\""),
                                    std::string("\"weights\"")})
    EXPECT_EQ(text.find(secret), std::string::npos) << "'" << secret << "' in:\n" << text;
  // What is kept of the configuration is still there.
  json models = body_of(client().Get("/models"));
  EXPECT_EQ(models["models"][1]["metrics"]["config"]["epochs"], 1) << models.dump();
}

// Rows written by an older version (a raw file-system error, the training configuration's folders) are shown
// without their paths.
TEST_F(PublicAnswers, RowsOfOlderVersionsAreShownWithoutTheirPaths) {
  {
    SqliteDatabase db((state_ / "mriscan.db").string());
    const json result = {{"model_version", "v1"},
                         {"metrics", {{"config", {{"data_dir", shared().data_dir}, {"epochs", 1}}}}}};
    db.exec("INSERT INTO jobs (status, params, created_at, error, result) VALUES ('failed', '{}', '2026-12-01', ?, ?)",
            {"filesystem error: cannot copy file: Not a directory [" + state_.string() + "/models/incoming]",
             result.dump()});
  }
  const json jobs = body_of(client().Get("/retrain_jobs"));
  ASSERT_EQ(jobs["jobs"].size(), 1u) << jobs.dump();
  const std::string text = jobs.dump();
  EXPECT_EQ(text.find(state_.string()), std::string::npos) << text;
  EXPECT_EQ(text.find(shared().data_dir), std::string::npos) << text;
  EXPECT_NE(text.find("older version"), std::string::npos) << text;
  EXPECT_EQ(jobs["jobs"][0]["result"]["metrics"]["config"]["epochs"], 1) << text;
}

}  // namespace
}  // namespace mriscan::server_test
