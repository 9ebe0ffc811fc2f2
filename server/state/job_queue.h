// Retraining jobs: a SQLite-persisted queue with ONE background worker thread, progress, cancellation and
// restart recovery.
//
// Status machine: queued -> running -> completed | failed | cancelled; queued -> cancelled; running -> queued
// when its server shuts down (SIGTERM). A job's parameters, status, timestamps, last progress, result and error
// live in the `jobs` table, so GET /retrain_status answers the same after a restart and on every replica.
//
// Replicas (several processes on one state directory, each with its own queue object and worker):
//   * Claiming is one conditional `UPDATE ... WHERE status = 'queued'` in a write transaction, recording the
//     claimer as `owner` (replica name + a per-process token): a job runs on exactly one replica, once.
//   * Lease: the owner's heartbeat thread stamps `heartbeat_at` every `heartbeat_seconds` and writes the live
//     progress with it, so any replica shows progress at most that old. A running job whose heartbeat is older
//     than `lease_seconds` (its process died: crash, kill -9, power loss) is recorded as failed ("interrupted"),
//     or as cancelled if a cancel was accepted for it, by whichever replica looks first (at start-up and whenever
//     a worker is idle); a live replica's job is never touched. An owner that finds its lease taken (it was
//     stopped longer than the lease) abandons the job at the next batch and records nothing.
//   * Cancel from any replica: `cancel_requested` in the row, read by the owner's heartbeat; `committing` in
//     the row is the point of no return (begin_commit), both checked in one transaction, so a 202 "cancelling"
//     always means the job ends cancelled.
//   * The outcome is decided in ONE transaction (commit): it checks that this process still owns the running job
//     and no cancel was accepted, records the job's work (the retrainer registers its model there) and marks the
//     job completed. The reaper's update is conditional on `status = 'running'` too, so of the owner committing
//     and another replica recording the expired lease exactly one wins, and a job recorded failed or cancelled
//     never has a registered version.
//   * Shutdown (request_stop, on SIGTERM): the running job stops at its next batch boundary and goes back to
//     `queued` (from the beginning), for another replica or the next start to run -- unless a cancel was
//     accepted for it, which then ends it `cancelled`.
//   * Every write of a job's owner is conditional on `owner` AND `status = 'running'`: once a lease has expired
//     and another replica recorded the job, its former owner can change nothing about it.
//
// Run folders: each job works in <runs_dir>/job-<id>. The queue removes it before the job runs (a leftover of an
// earlier attempt is never resumed: a requeued job starts from its first epoch), at the start of commit (what the
// job keeps must be out of it by then: the retrainer has staged its model in the registry), when the runner
// returns (before the end is recorded, so a replica that claims a requeued job never has its new folder removed),
// and when a replica records an expired lease. At start-up, the queue also removes the folders of jobs that have
// ended: on PostgreSQL a folder is on its owner's host, which the replica recording an expired lease cannot reach.
//
// Failure messages: GET /retrain_status is not authenticated, so a job's recorded error never carries an
// exception's text (file-system errors name server paths): it says which step failed, in words (JobStepError),
// and the job and owner under which the server log has the full exception.
//
// Faults: a database error (disk full, busy, I/O) never ends the process. Claiming a job is retried after a
// pause; progress that cannot be persisted stays in memory; a job's final status is retried every second until
// it is recorded (or the server stops: then its lease expires and a replica records the job as interrupted).
//
// Thread budget (how retraining leaves the CPU to predictions): the worker thread sets a per-thread kernel budget
// of 1 thread (engine/parallel.h set_thread_num_threads; the kernels size every OpenMP team with num_threads(), so
// this limits only the teams started from this thread, and predictions keep the global setting) and lowers its
// own scheduling priority with setpriority(PRIO_PROCESS, gettid(), +10) (Linux applies nice per thread, and the
// data loader's threads inherit it). A retrain therefore computes on one core at low priority; a prediction
// preempts it on that core and has the other one to itself.
// What it is not: the training itself; `JobRunner` (server/retrainer.h) does that.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>

#include "server/state/database.h"

namespace mriscan {

struct JobContext {
  int64_t id = 0;
  nlohmann::json params;
  // Replaces the job's live progress; `persist` also writes it to the database (use at epoch ends).
  std::function<void(const nlohmann::json& progress, bool persist)> report;
  std::string run_dir;  // the job's working folder (see "Run folders" above); "" when the queue has no runs_dir
  const std::atomic<bool>* cancel = nullptr;
  // The point of no return: called once training is over, before the result is registered and activated.
  // Returns false if a cancel arrived first (the runner then discards its result and returns nullopt); after it
  // returns true, cancel() answers kFinishing, so a 202 "cancelling" always means the job ends cancelled.
  std::function<bool()> begin_commit;
  // The outcome, in ONE transaction (after removing the run folder): if this process still owns the running job
  // and no cancel was accepted, runs `record` (which writes the job's work in the same transaction and returns the
  // job's result) and marks the job completed with that result. Returns nullopt without running `record`
  // otherwise (another replica recorded the expired lease, or a cancel came first): the runner then discards its
  // work and returns nullopt. An exception from `record` rolls all of it back.
  using Record = std::function<nlohmann::json(Database::Session&)>;
  std::function<std::optional<nlohmann::json>(const Record& record)> commit;
};

// What a runner throws to say which step failed, in words a client may read ("saving the model"); what() is the
// original error, which may name server paths, and goes to the server log only.
struct JobStepError : std::runtime_error {
  JobStepError(std::string step, const std::string& cause) : std::runtime_error(cause), step(std::move(step)) {}
  std::string step;
};

// Runs one job; returns its result JSON, or nullopt when it stopped because `cancel` was set. Throwing marks the
// job failed (see "Failure messages" above).
using JobRunner = std::function<std::optional<nlohmann::json>(const JobContext&)>;

struct JobQueueOptions {
  int omp_threads = 1;  // OpenMP threads of the worker
  int nice = 10;        // added niceness of the worker thread
  std::string owner = "local";     // this process in the `owner` column: "<replica name>/<token>"
  double heartbeat_seconds = 1.0;  // lease renewal and progress/cancel exchange with the database
  double lease_seconds = 10.0;     // a running job with an older heartbeat belongs to a dead process
  double poll_seconds = 2.0;       // an idle worker looks for jobs submitted on other replicas this often
  std::string runs_dir;            // each job works in runs_dir/job-<id> ("": no run folders)
};

enum class CancelOutcome { kCancelled, kCancelling, kFinishing, kAlreadyFinished, kUnknown };

class JobQueue {
 public:
  JobQueue(Database& db, JobRunner runner, JobQueueOptions options = {});
  ~JobQueue();  // stop()

  int64_t submit(const nlohmann::json& params);
  CancelOutcome cancel(int64_t id);
  std::optional<nlohmann::json> get(int64_t id);  // the job as GET /retrain_status shows it
  nlohmann::json list();                          // newest first
  std::map<std::string, int64_t> counts_by_status();
  // Asks the worker to stop: the running job stops at its next batch and is requeued. Does not wait.
  void request_stop();
  void stop();  // request_stop(), then waits for the worker

 private:
  void worker_loop();
  void heartbeat_loop();
  void heartbeat(int64_t id);  // renews the lease, writes progress, reads cancel_requested
  void run_job(int64_t id, const nlohmann::json& params);
  nlohmann::json row_to_json(const SqlRow& row);
  // Running jobs of dead processes -> failed, or cancelled if a cancel was accepted; returns their ids (whose run
  // folders the caller removes).
  std::vector<int64_t> record_expired_leases();
  std::optional<std::pair<int64_t, nlohmann::json>> claim_next();  // marks the oldest queued job running
  bool begin_commit();
  std::optional<nlohmann::json> commit(int64_t id, const JobContext::Record& record);
  std::string run_dir(int64_t id) const;  // "" without runs_dir
  void remove_run_dir(int64_t id);
  void remove_run_dirs_of_ended_jobs();  // at start-up (see "Run folders")
  // Logs the failure in full and returns what the job's record says of it.
  std::string public_failure(int64_t id, const std::string& step, const std::string& cause);
  // Records the end (status "queued" requeues it); only while this process still owns the job.
  void finish(int64_t id, const std::string& status, const nlohmann::json& result, const std::string& error);
  bool pause(std::chrono::milliseconds duration);  // false when stopping
  static void log_error(const std::string& what, const std::exception& error);

  Database& db_;
  JobRunner runner_;
  JobQueueOptions options_;
  std::mutex mutex_;
  std::condition_variable wake_;  // a job was submitted, or stop (the worker and the heartbeat thread wait on it)
  bool stopping_ = false;
  int64_t running_id_ = 0;  // 0: idle
  std::atomic<bool> cancel_running_{false};
  nlohmann::json live_progress_;  // of running_id_
  uint64_t progress_serial_ = 0, persisted_serial_ = 0;  // progress reports made / written by the heartbeat
  std::thread worker_;
  std::thread heartbeat_;
};

}  // namespace mriscan
