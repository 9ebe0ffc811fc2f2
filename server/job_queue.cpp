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
    if (committing_) return CancelOutcome::kFinishing;
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

void JobQueue::log_error(const std::string& what, const std::exception& error) {
  std::fprintf(stderr, "mriscan serve: retraining worker: %s: %s\n", what.c_str(), error.what());
}

// Waits up to `duration`, or until a submit() or stop() wakes the worker.
bool JobQueue::pause(std::chrono::milliseconds duration) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (stopping_) return false;
  wake_.wait_for(lock, duration);
  return !stopping_;
}

std::optional<std::pair<int64_t, nlohmann::json>> JobQueue::claim_next() {
  std::optional<std::pair<int64_t, nlohmann::json>> claimed;
  db_.transaction([&](Database::Session& session) {
    auto rows = session.query("SELECT id, params FROM jobs WHERE status = 'queued' ORDER BY id LIMIT 1");
    if (rows.empty()) return;
    const int64_t id = rows[0].integer("id");
    // Conditional on the status, so a job cancelled in between is never started.
    session.exec("UPDATE jobs SET status = 'running', started_at = ? WHERE id = ? AND status = 'queued'",
                 {utc_now_iso8601(), id});
    if (session.changes() == 1) claimed.emplace(id, parse_or_null(rows[0].text("params")));
  });
  return claimed;
}

void JobQueue::worker_loop() {
  apply_thread_budget(options_);
  for (;;) {
    std::optional<std::pair<int64_t, nlohmann::json>> job;
    try {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
      job = claim_next();
      if (job) {
        running_id_ = job->first;
        committing_ = false;
        cancel_running_ = false;
        live_progress_ = nullptr;
      }
    } catch (const std::exception& error) {
      log_error("cannot read the job queue (retrying in 1 s)", error);
      if (!pause(std::chrono::seconds(1))) return;
      continue;
    }
    if (!job) {
      if (!pause(std::chrono::seconds(5))) return;
      continue;
    }
    run_job(job->first, job->second);
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
    if (!persist) return;
    try {
      db_.exec("UPDATE jobs SET progress = ? WHERE id = ?", {progress.dump(), id});
    } catch (const std::exception& error) {
      log_error("cannot persist progress (kept in memory)", error);  // the final status records it again
    }
  };
  context.begin_commit = [this] {
    std::lock_guard<std::mutex> lock(mutex_);
    if (cancel_running_) return false;
    committing_ = true;
    return true;
  };
  std::string status, message;
  nlohmann::json result;
  try {
    std::optional<nlohmann::json> outcome = runner_(context);
    std::lock_guard<std::mutex> lock(mutex_);
    if (outcome) status = "completed", result = *outcome;
    else if (stopping_) status = "failed", message = "interrupted: the server shut down while this job was running";
    else status = "cancelled";
  } catch (const std::exception& error) {
    status = "failed", message = error.what();
  } catch (...) {
    status = "failed", message = "unknown error";
  }
  finish(id, status, result, message);
}

void JobQueue::finish(int64_t id, const std::string& status, const nlohmann::json& result, const std::string& error) {
  for (;;) {
    try {
      std::lock_guard<std::mutex> lock(mutex_);
      db_.exec("UPDATE jobs SET status = ?, finished_at = ?, result = ?, error = ?,"
               " progress = COALESCE(?, progress) WHERE id = ?",
               {status, utc_now_iso8601(), result.is_null() ? SqlValue(nullptr) : SqlValue(result.dump()),
                error.empty() ? SqlValue(nullptr) : SqlValue(error),
                live_progress_.is_null() ? SqlValue(nullptr) : SqlValue(live_progress_.dump()), id});
      running_id_ = 0;
      committing_ = false;
      live_progress_ = nullptr;
      return;
    } catch (const std::exception& failure) {
      log_error("cannot record job " + std::to_string(id) + " as " + status + " (retrying in 1 s)", failure);
    }
    if (!pause(std::chrono::seconds(1))) {
      std::lock_guard<std::mutex> lock(mutex_);
      running_id_ = 0;  // left 'running' in the table: the next start records it as interrupted
      return;
    }
  }
}

}  // namespace mriscan
