// Retraining jobs: a SQLite-persisted queue with ONE background worker thread, progress, cancellation and
// restart recovery.
//
// Status machine: queued -> running -> completed | failed | cancelled; queued -> cancelled. A job's parameters,
// status, timestamps, last progress, result and error live in the `jobs` table, so GET /retrain_status answers
// the same after a restart. Live progress (every batch) is kept in memory and written to the table once per
// epoch. On open, jobs left `running` by a crash or kill are marked failed ("interrupted"); queued jobs stay
// queued and run. Cancelling a running job sets its flag, which the trainer polls between batches.
//
// Faults: a database error (disk full, busy, I/O) never ends the process. Claiming a job is retried after a
// pause; progress that cannot be persisted stays in memory; a job's final status is retried every second until
// it is recorded (or the server stops, when the start-up recovery records the job as interrupted).
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
#include <string>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>

#include "server/database.h"

namespace mriscan {

struct JobContext {
  int64_t id = 0;
  nlohmann::json params;
  // Replaces the job's live progress; `persist` also writes it to the database (use at epoch ends).
  std::function<void(const nlohmann::json& progress, bool persist)> report;
  const std::atomic<bool>* cancel = nullptr;
  // The point of no return: called once training is over, before the result is registered and activated.
  // Returns false if a cancel arrived first (the runner then discards its result and returns nullopt); after it
  // returns true, cancel() answers kFinishing, so a 202 "cancelling" always means the job ends cancelled.
  std::function<bool()> begin_commit;
};

// Runs one job; returns its result JSON, or nullopt when it stopped because `cancel` was set. Throwing marks the
// job failed with the exception's message.
using JobRunner = std::function<std::optional<nlohmann::json>(const JobContext&)>;

struct JobQueueOptions {
  int omp_threads = 1;  // OpenMP threads of the worker
  int nice = 10;        // added niceness of the worker thread
};

enum class CancelOutcome { kCancelled, kCancelling, kFinishing, kAlreadyFinished, kUnknown };

class JobQueue {
 public:
  JobQueue(Database& db, JobRunner runner, JobQueueOptions options = {});
  ~JobQueue();  // stops the worker; a running job is cancelled and recorded as failed (interrupted)

  int64_t submit(const nlohmann::json& params);
  CancelOutcome cancel(int64_t id);
  std::optional<nlohmann::json> get(int64_t id);  // the job as GET /retrain_status shows it
  nlohmann::json list();                          // newest first
  std::map<std::string, int64_t> counts_by_status();
  void stop();

 private:
  void worker_loop();
  void run_job(int64_t id, const nlohmann::json& params);
  nlohmann::json row_to_json(const SqlRow& row);
  std::optional<std::pair<int64_t, nlohmann::json>> claim_next();  // marks the oldest queued job running
  void finish(int64_t id, const std::string& status, const nlohmann::json& result, const std::string& error);
  bool pause(std::chrono::milliseconds duration);  // false when stopping
  static void log_error(const std::string& what, const std::exception& error);

  Database& db_;
  JobRunner runner_;
  JobQueueOptions options_;
  std::mutex mutex_;
  std::condition_variable wake_;  // a job was submitted, or stop
  bool stopping_ = false;
  int64_t running_id_ = 0;  // 0: idle
  bool committing_ = false;  // the running job passed begin_commit
  std::atomic<bool> cancel_running_{false};
  nlohmann::json live_progress_;  // of running_id_
  std::thread worker_;
};

}  // namespace mriscan
