// The persisted job queue and its single worker; see job_queue.h.
#include "server/job_queue.h"

#include <omp.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "engine/parallel.h"

namespace mriscan {
namespace {

nlohmann::json parse_or_null(const std::string& text) {
  if (text.empty()) return nullptr;
  nlohmann::json parsed = nlohmann::json::parse(text, nullptr, false);
  return parsed.is_discarded() ? nlohmann::json() : parsed;
}

nlohmann::json text_or_null(const SqlRow& row, const std::string& column) {
  return row.is_null(column) ? nlohmann::json() : nlohmann::json(row.text(column));
}

// The thread budget described in job_queue.h, applied to the calling (worker) thread only.
void apply_thread_budget(const JobQueueOptions& options) {
  set_thread_num_threads(options.omp_threads);
  omp_set_num_threads(options.omp_threads);
  const pid_t tid = static_cast<pid_t>(syscall(SYS_gettid));
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(tid), options.nice) != 0)
    std::perror("mriscan serve: setpriority for the retraining thread");
}

}  // namespace

JobQueue::JobQueue(Database& db, JobRunner runner, JobQueueOptions options)
    : db_(db), runner_(std::move(runner)), options_(options) {
  db_.exec(
      "CREATE TABLE IF NOT EXISTS jobs ("
      " id INTEGER PRIMARY KEY AUTOINCREMENT, status TEXT NOT NULL, params TEXT NOT NULL,"
      " created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT,"
      " progress TEXT, result TEXT, error TEXT)");
  // Recovery: a job still `running` in the table was interrupted (crash, kill -9, power loss).
  db_.exec("UPDATE jobs SET status = 'failed', finished_at = ?,"
           " error = 'interrupted: the server stopped while this job was running' WHERE status = 'running'",
           {utc_now_iso8601()});
  worker_ = std::thread([this] { worker_loop(); });
}

JobQueue::~JobQueue() { stop(); }

void JobQueue::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    cancel_running_ = true;
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
}

int64_t JobQueue::submit(const nlohmann::json& params) {
  int64_t id = 0;
  db_.transaction([&](Database::Session& session) {
    session.exec("INSERT INTO jobs (status, params, created_at) VALUES ('queued', ?, ?)",
                 {params.dump(), utc_now_iso8601()});
    id = session.last_insert_id();
  });
  wake_.notify_all();
  return id;
}

CancelOutcome JobQueue::cancel(int64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (id == running_id_) {
    cancel_running_ = true;
    return CancelOutcome::kCancelling;
  }
  auto rows = db_.query("SELECT status FROM jobs WHERE id = ?", {id});
  if (rows.empty()) return CancelOutcome::kUnknown;
  if (rows[0].text("status") != "queued") return CancelOutcome::kAlreadyFinished;
  db_.exec("UPDATE jobs SET status = 'cancelled', finished_at = ? WHERE id = ? AND status = 'queued'",
           {utc_now_iso8601(), id});
  return CancelOutcome::kCancelled;
}

nlohmann::json JobQueue::row_to_json(const SqlRow& row) {
  const int64_t id = row.integer("id");
  nlohmann::json job = {{"job_id", id},
                        {"status", row.text("status")},
                        {"params", parse_or_null(row.text("params"))},
                        {"created_at", row.text("created_at")},
                        {"started_at", text_or_null(row, "started_at")},
                        {"finished_at", text_or_null(row, "finished_at")},
                        {"progress", parse_or_null(row.text("progress"))},
                        {"result", parse_or_null(row.text("result"))},
                        {"error", text_or_null(row, "error")}};
  std::lock_guard<std::mutex> lock(mutex_);
  if (id == running_id_ && !live_progress_.is_null()) {
    job["progress"] = live_progress_;
    if (cancel_running_) job["cancel_requested"] = true;
  }
  return job;
}

std::optional<nlohmann::json> JobQueue::get(int64_t id) {
  auto rows = db_.query("SELECT * FROM jobs WHERE id = ?", {id});
  if (rows.empty()) return std::nullopt;
  return row_to_json(rows[0]);
}

nlohmann::json JobQueue::list() {
  nlohmann::json jobs = nlohmann::json::array();
  for (const SqlRow& row : db_.query("SELECT * FROM jobs ORDER BY id DESC")) jobs.push_back(row_to_json(row));
  return jobs;
}

std::map<std::string, int64_t> JobQueue::counts_by_status() {
  std::map<std::string, int64_t> counts = {
      {"queued", 0}, {"running", 0}, {"completed", 0}, {"failed", 0}, {"cancelled", 0}};
  for (const SqlRow& row : db_.query("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status"))
    counts[row.text("status")] = row.integer("n");
  return counts;
}

void JobQueue::worker_loop() {
  apply_thread_budget(options_);
  for (;;) {
    int64_t id = 0;
    nlohmann::json params;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      for (;;) {
        if (stopping_) return;
        auto rows = db_.query("SELECT id, params FROM jobs WHERE status = 'queued' ORDER BY id LIMIT 1");
        if (!rows.empty()) {
          id = rows[0].integer("id");
          params = parse_or_null(rows[0].text("params"));
          break;
        }
        wake_.wait_for(lock, std::chrono::seconds(5));
      }
      db_.exec("UPDATE jobs SET status = 'running', started_at = ? WHERE id = ?", {utc_now_iso8601(), id});
      running_id_ = id;
      cancel_running_ = false;
      live_progress_ = nullptr;
    }
    run_job(id, params);
  }
}

void JobQueue::run_job(int64_t id, const nlohmann::json& params) {
  JobContext context;
  context.id = id;
  context.params = params;
  context.cancel = &cancel_running_;
  context.report = [this, id](const nlohmann::json& progress, bool persist) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      live_progress_ = progress;
    }
    if (persist) db_.exec("UPDATE jobs SET progress = ? WHERE id = ?", {progress.dump(), id});
  };
  try {
    std::optional<nlohmann::json> result = runner_(context);
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping = stopping_;
    }
    if (result) finish(id, "completed", *result, "");
    else if (stopping) finish(id, "failed", nullptr, "interrupted: the server shut down while this job was running");
    else finish(id, "cancelled", nullptr, "");
  } catch (const std::exception& error) {
    finish(id, "failed", nullptr, error.what());
  }
}

void JobQueue::finish(int64_t id, const std::string& status, const nlohmann::json& result, const std::string& error) {
  std::lock_guard<std::mutex> lock(mutex_);
  db_.exec("UPDATE jobs SET status = ?, finished_at = ?, result = ?, error = ?, progress = COALESCE(?, progress)"
           " WHERE id = ?",
           {status, utc_now_iso8601(), result.is_null() ? SqlValue(nullptr) : SqlValue(result.dump()),
            error.empty() ? SqlValue(nullptr) : SqlValue(error),
            live_progress_.is_null() ? SqlValue(nullptr) : SqlValue(live_progress_.dump()), id});
  running_id_ = 0;
  live_progress_ = nullptr;
}

}  // namespace mriscan
