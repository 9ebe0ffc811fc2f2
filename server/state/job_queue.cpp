// The persisted job queue and its single worker; see job_queue.h.
#include "server/state/job_queue.h"

#include <omp.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>

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
    : db_(db), runner_(std::move(runner)), options_(std::move(options)) {
  db_.transaction([](Database::Session& session) {
    session.exec("CREATE TABLE IF NOT EXISTS jobs (id " + sql_auto_id(session.dialect()) +
                 ", status TEXT NOT NULL, params TEXT NOT NULL, created_at TEXT NOT NULL, started_at TEXT,"
                 " finished_at TEXT, progress TEXT, result TEXT, error TEXT)");
  });
  // The replica columns (see job_queue.h), added to tables of older versions too. heartbeat_at: the database's
  // clock in Unix seconds, so leases depend on one clock, whichever host the replicas run on.
  db_.add_column_if_missing("jobs", "owner", "TEXT");
  db_.add_column_if_missing("jobs", "heartbeat_at", "DOUBLE PRECISION");
  db_.add_column_if_missing("jobs", "cancel_requested", "INTEGER NOT NULL DEFAULT 0");
  db_.add_column_if_missing("jobs", "committing", "INTEGER NOT NULL DEFAULT 0");
  for (int64_t id : record_expired_leases()) remove_run_dir(id);  // recovery after a crash of any process
  remove_run_dirs_of_ended_jobs();
  worker_ = std::thread([this] { worker_loop(); });
  heartbeat_ = std::thread([this] { heartbeat_loop(); });
}

JobQueue::~JobQueue() { stop(); }

void JobQueue::request_stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    cancel_running_ = true;
  }
  wake_.notify_all();
}

void JobQueue::stop() {
  request_stop();
  if (worker_.joinable()) worker_.join();
  wake_.notify_all();  // the heartbeat thread ends once no job runs
  if (heartbeat_.joinable()) heartbeat_.join();
}

int64_t JobQueue::submit(const nlohmann::json& params) {
  int64_t id = 0;
  db_.transaction([&](Database::Session& session) {
    id = session.query("INSERT INTO jobs (status, params, created_at) VALUES ('queued', ?, ?) RETURNING id",
                       {params.dump(), utc_now_iso8601()})
             .at(0)
             .integer("id");
  });
  wake_.notify_all();
  return id;
}

// One transaction decides, whichever replica runs the job: the owner's begin_commit() sets `committing` in the
// same way, so exactly one of "cancelling" and "finishing" wins.
CancelOutcome JobQueue::cancel(int64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  CancelOutcome outcome = CancelOutcome::kUnknown;
  db_.transaction([&](Database::Session& session) {
    outcome = CancelOutcome::kUnknown;
    auto rows = session.query("SELECT status, committing FROM jobs WHERE id = ?", {id});
    if (rows.empty()) return;
    const std::string status = rows[0].text("status");
    if (status == "queued") {
      session.exec("UPDATE jobs SET status = 'cancelled', finished_at = ? WHERE id = ?", {utc_now_iso8601(), id});
      outcome = CancelOutcome::kCancelled;
    } else if (status != "running") {
      outcome = CancelOutcome::kAlreadyFinished;
    } else if (rows[0].integer("committing") != 0) {
      outcome = CancelOutcome::kFinishing;
    } else {
      session.exec("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND status = 'running'", {id});
      outcome = CancelOutcome::kCancelling;
    }
  });
  if (outcome == CancelOutcome::kCancelling && id == running_id_) cancel_running_ = true;  // ours: at once
  return outcome;
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
  if (row.integer("cancel_requested") != 0) job["cancel_requested"] = true;
  std::lock_guard<std::mutex> lock(mutex_);
  if (id == running_id_ && !live_progress_.is_null()) job["progress"] = live_progress_;  // fresher than the row
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

// A cancel accepted for the job (a 202 "cancelling") ends it cancelled, as the 202 promised: only its owner's
// stopping was left to do, and the owner is gone.
std::vector<int64_t> JobQueue::record_expired_leases() {
  std::vector<int64_t> recorded;
  db_.transaction([&](Database::Session& session) {
    recorded.clear();  // the body may run more than once (database.h)
    // One statement, so the database's clock is read once for the rows it records and the ids it returns.
    const auto rows = session.query(
        "UPDATE jobs SET finished_at = ?,"
        " status = CASE WHEN cancel_requested = 1 THEN 'cancelled' ELSE 'failed' END,"
        " error = CASE WHEN cancel_requested = 1 THEN NULL ELSE 'interrupted: the server running it (' ||"
        " COALESCE(owner, 'unknown') || ') stopped while this job was running' END"
        " WHERE status = 'running' AND (heartbeat_at IS NULL OR heartbeat_at < " +
            sql_now_seconds(session.dialect()) + " - ?) RETURNING id",
        {utc_now_iso8601(), options_.lease_seconds});
    for (const SqlRow& row : rows) recorded.push_back(row.integer("id"));
  });
  return recorded;
}

std::optional<std::pair<int64_t, nlohmann::json>> JobQueue::claim_next() {
  std::optional<std::pair<int64_t, nlohmann::json>> claimed;
  db_.transaction([&](Database::Session& session) {
    claimed.reset();
    auto rows = session.query("SELECT id, params FROM jobs WHERE status = 'queued' ORDER BY id LIMIT 1");
    if (rows.empty()) return;
    const int64_t id = rows[0].integer("id");
    // Conditional on the status, so a job cancelled or claimed in between is never started twice.
    session.exec("UPDATE jobs SET status = 'running', started_at = ?, owner = ?, heartbeat_at = " +
                     sql_now_seconds(session.dialect()) +
                     ", cancel_requested = 0, committing = 0 WHERE id = ? AND status = 'queued'",
                 {utc_now_iso8601(), options_.owner, id});
    if (session.changes() == 1) claimed.emplace(id, parse_or_null(rows[0].text("params")));
  });
  return claimed;
}

void JobQueue::worker_loop() {
  apply_thread_budget(options_);
  for (;;) {
    std::optional<std::pair<int64_t, nlohmann::json>> job;
    std::vector<int64_t> reaped;
    try {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stopping_) return;
        reaped = record_expired_leases();
        job = claim_next();
        if (job) {
          running_id_ = job->first;
          cancel_running_ = false;
          live_progress_ = nullptr;
        }
      }
      for (int64_t id : reaped) remove_run_dir(id);  // outside the lock: status readers need not wait for it
    } catch (const std::exception& error) {
      log_error("cannot read the job queue (retrying in 1 s)", error);
      if (!pause(std::chrono::seconds(1))) return;
      continue;
    }
    if (!job) {
      if (!pause(std::chrono::milliseconds(static_cast<int64_t>(options_.poll_seconds * 1000)))) return;
      continue;
    }
    run_job(job->first, job->second);
  }
}

void JobQueue::heartbeat_loop() {
  const auto interval = std::chrono::milliseconds(static_cast<int64_t>(options_.heartbeat_seconds * 1000));
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait_for(lock, interval);
    if (stopping_ && running_id_ == 0) return;
    if (running_id_ == 0) continue;
    const int64_t id = running_id_;
    lock.unlock();
    heartbeat(id);
    lock.lock();
  }
}

void JobQueue::heartbeat(int64_t id) {
  try {
    nlohmann::json progress;
    uint64_t serial = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (progress_serial_ != persisted_serial_) progress = live_progress_, serial = progress_serial_;
    }
    bool owned = true, cancel_requested = false;
    db_.transaction([&](Database::Session& session) {
      session.exec("UPDATE jobs SET heartbeat_at = " + sql_now_seconds(session.dialect()) +
                       ", progress = COALESCE(?, progress) WHERE id = ? AND owner = ? AND status = 'running'",
                   {progress.is_null() ? SqlValue(nullptr) : SqlValue(progress.dump()), id, options_.owner});
      owned = session.changes() == 1;
      auto rows = session.query("SELECT cancel_requested FROM jobs WHERE id = ?", {id});
      cancel_requested = !rows.empty() && rows[0].integer("cancel_requested") != 0;
    });
    std::lock_guard<std::mutex> lock(mutex_);
    if (serial != 0) persisted_serial_ = serial;
    if (id != running_id_) return;
    if (!owned) {
      std::fprintf(stderr, "mriscan serve: retraining worker: job %lld is no longer ours (our lease expired and"
                   " another replica recorded it); abandoning it\n", static_cast<long long>(id));
      cancel_running_ = true;
    }
    if (cancel_requested) cancel_running_ = true;
  } catch (const std::exception& error) {
    log_error("heartbeat of job " + std::to_string(id) + " failed (retrying)", error);
  }
}

bool JobQueue::begin_commit() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (cancel_running_) return false;
  bool committed = false;
  db_.transaction([&](Database::Session& session) {
    session.exec("UPDATE jobs SET committing = 1 WHERE id = ? AND owner = ? AND status = 'running'"
                 " AND cancel_requested = 0",
                 {running_id_, options_.owner});
    committed = session.changes() == 1;
  });
  return committed;
}

std::optional<nlohmann::json> JobQueue::commit(int64_t id, const JobContext::Record& record) {
  remove_run_dir(id);  // first, so that a job seen completed has no run folder left
  SqlValue progress = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!live_progress_.is_null()) progress = live_progress_.dump();
  }
  std::optional<nlohmann::json> result;
  db_.transaction([&](Database::Session& session) {
    result.reset();
    if (session.query("SELECT id FROM jobs WHERE id = ? AND owner = ? AND status = 'running' AND cancel_requested = 0",
                      {id, options_.owner}).empty())
      return;
    nlohmann::json recorded = record(session);
    session.exec("UPDATE jobs SET status = 'completed', finished_at = ?, result = ?, error = NULL,"
                 " progress = COALESCE(?, progress) WHERE id = ?",
                 {utc_now_iso8601(), recorded.dump(), progress, id});
    result = std::move(recorded);
  });
  return result;
}

// The folders first, then their jobs' status: ended is final, so a folder removed here is never one a job is
// about to use (a job submitted and claimed after the listing has a folder the listing did not see).
void JobQueue::remove_run_dirs_of_ended_jobs() {
  std::error_code error;
  if (options_.runs_dir.empty() || !std::filesystem::is_directory(options_.runs_dir, error)) return;
  std::vector<int64_t> ids;
  for (const auto& entry : std::filesystem::directory_iterator(options_.runs_dir, error)) {
    const std::string name = entry.path().filename().string(), digits = name.substr(std::min<size_t>(4, name.size()));
    if (name.rfind("job-", 0) == 0 && !digits.empty() && digits.size() <= 12 &&
        digits.find_first_not_of("0123456789") == std::string::npos)
      ids.push_back(std::stoll(digits));
  }
  for (int64_t id : ids) {
    auto rows = db_.query("SELECT status FROM jobs WHERE id = ?", {id});
    const std::string status = rows.empty() ? "" : rows[0].text("status");
    if (status != "queued" && status != "running") remove_run_dir(id);
  }
}

std::string JobQueue::run_dir(int64_t id) const {
  if (options_.runs_dir.empty()) return "";
  return (std::filesystem::path(options_.runs_dir) / ("job-" + std::to_string(id))).string();
}

void JobQueue::remove_run_dir(int64_t id) {
  const std::string dir = run_dir(id);
  if (dir.empty()) return;
  std::error_code error;
  std::filesystem::remove_all(dir, error);
  if (error && std::filesystem::exists(dir))  // not just another replica removing it at the same time
    std::fprintf(stderr, "mriscan serve: retraining worker: cannot remove %s: %s\n", dir.c_str(),
                 error.message().c_str());
}

std::string JobQueue::public_failure(int64_t id, const std::string& step, const std::string& cause) {
  std::fprintf(stderr, "mriscan serve: retraining worker: job %lld (%s) failed while %s: %s\n",
               static_cast<long long>(id), options_.owner.c_str(), step.c_str(), cause.c_str());
  return "retraining failed while " + step + " (the server log of " + options_.owner + " has the details under job " +
         std::to_string(id) + ")";
}

void JobQueue::run_job(int64_t id, const nlohmann::json& params) {
  JobContext context;
  context.id = id;
  context.params = params;
  context.run_dir = run_dir(id);
  context.cancel = &cancel_running_;
  context.report = [this, id](const nlohmann::json& progress, bool persist) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      live_progress_ = progress;
      ++progress_serial_;  // the heartbeat writes it within heartbeat_seconds
    }
    if (!persist) return;
    try {
      db_.exec("UPDATE jobs SET progress = ? WHERE id = ? AND owner = ? AND status = 'running'",
               {progress.dump(), id, options_.owner});
    } catch (const std::exception& error) {
      log_error("cannot persist progress (kept in memory)", error);  // the final status records it again
    }
  };
  context.begin_commit = [this] { return begin_commit(); };
  context.commit = [this, id](const JobContext::Record& record) { return commit(id, record); };
  std::string status, message;
  nlohmann::json result;
  remove_run_dir(id);
  try {
    std::optional<nlohmann::json> outcome = runner_(context);
    std::lock_guard<std::mutex> lock(mutex_);
    if (outcome) {
      status = "completed", result = *outcome;
    } else if (stopping_) {
      const nlohmann::json& p = live_progress_;
      status = "queued";
      message = "requeued: its server (" + options_.owner + ") shut down at epoch " +
                (p.contains("epoch") ? p["epoch"].dump() : "?") + ", batch " +
                (p.contains("batch") ? p["batch"].dump() : "?") + "; it runs again from the start";
    } else {
      status = "cancelled";
    }
  } catch (const JobStepError& error) {
    status = "failed", message = public_failure(id, error.step, error.what());
  } catch (const std::exception& error) {
    status = "failed", message = public_failure(id, "running", error.what());
  } catch (...) {
    status = "failed", message = public_failure(id, "running", "an exception of unknown type");
  }
  remove_run_dir(id);  // before the end is recorded: see "Run folders" in job_queue.h
  finish(id, status, result, message);
}

void JobQueue::finish(int64_t id, const std::string& status, const nlohmann::json& result, const std::string& error) {
  // While stopping, pause() returns at once: a few plain retries then, so that a briefly busy database does not
  // turn a requeue into a lease expiry.
  for (int attempt = 1;; ++attempt) {
    try {
      std::lock_guard<std::mutex> lock(mutex_);
      const SqlValue progress = live_progress_.is_null() ? SqlValue(nullptr) : SqlValue(live_progress_.dump());
      if (status == "queued") {
        // A cancel accepted meanwhile (202 "cancelling", perhaps on another replica) wins over the requeue.
        db_.exec("UPDATE jobs SET"
                 " status = CASE WHEN cancel_requested = 1 THEN 'cancelled' ELSE 'queued' END,"
                 " finished_at = CASE WHEN cancel_requested = 1 THEN ? END,"
                 " error = CASE WHEN cancel_requested = 1 THEN NULL ELSE ? END,"
                 " started_at = CASE WHEN cancel_requested = 1 THEN started_at END,"
                 " owner = CASE WHEN cancel_requested = 1 THEN owner END,"
                 " progress = COALESCE(?, progress), heartbeat_at = NULL, committing = 0"
                 " WHERE id = ? AND owner = ? AND status = 'running'",
                 {utc_now_iso8601(), error, progress, id, options_.owner});
        std::fprintf(stderr, "mriscan serve: retraining worker: job %lld %s\n", static_cast<long long>(id),
                     error.c_str());
      } else {
        db_.exec("UPDATE jobs SET status = ?, finished_at = ?, result = ?, error = ?,"
                 " progress = COALESCE(?, progress) WHERE id = ? AND owner = ? AND status = 'running'",
                 {status, utc_now_iso8601(), result.is_null() ? SqlValue(nullptr) : SqlValue(result.dump()),
                  error.empty() ? SqlValue(nullptr) : SqlValue(error), progress, id, options_.owner});
      }
      running_id_ = 0;
      live_progress_ = nullptr;
      return;
    } catch (const std::exception& failure) {
      log_error("cannot record job " + std::to_string(id) + " as " + status + " (retrying in 1 s)", failure);
    }
    bool stopping = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping = stopping_;
    }
    if (stopping ? attempt >= 5 : !pause(std::chrono::seconds(1))) {
      std::lock_guard<std::mutex> lock(mutex_);
      running_id_ = 0;  // left 'running' in the table: its lease expires and a replica records it interrupted
      return;
    }
    if (stopping) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace mriscan
