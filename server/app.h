// The mriscan service as an object: state (SQLite, uploads, model versions), the retraining worker, and the HTTP
// server with every route. `mriscan serve` builds one and listens; tests build one on a free port in-process.
//
// Life cycle: the constructor opens <state_dir>/mriscan.db, recovers (interrupted jobs -> failed, the last good
// model active), imports the initial model when the registry is empty, and starts the retraining worker and the
// dataset scan. bind() + listen() (or start() for a background thread) serve; stop() stops accepting, drains the
// requests already accepted (httplib joins its task queue), then stops the worker. The destructor calls stop().
//
// Concurrency policy (2 cores shared by serving and training), with the ServerConfig fields that set it:
//   * HTTP I/O: connections wait in the connection gate (server/transport/connection_gate.h), not in threads; a request
//     whose head has arrived goes to one of `http_threads` workers, at most `max_queued_requests` waiting (then
//     503 with Retry-After, the body discarded). /health and /ready have a thread of their own, so they answer
//     while every worker is busy. Heads and bodies have deadlines (`read_timeout_seconds`, then 408).
//   * Predictions: the process-wide kernel thread count (`mriscan serve --threads`, default the physical cores)
//     is shared by concurrent predictions through a ThreadBudget (server/thread_budget.h): a lone request gets
//     every core, under load each gets one and as many run at once as there are cores (measured to beat both
//     one-at-a-time and micro-batching on this machine: docs/serving.md). The model pointer is copied per
//     request, so a model swap never blocks or fails a prediction. Decoding a request's images takes one core
//     of the same budget (ThreadBudget::acquire_one), so image work never runs beside the cores it lends out.
//   * Grad-CAM: one explanation runs at a time; at most `explain_max_waiting` more wait for it (lowered so that
//     they hold at most half of the workers), and any beyond get 503 with Retry-After at once
//     (server/explain_admission.h).
//   * Retraining: ONE background worker (server/state/job_queue.h) with a thread budget of 1 kernel thread
//     (engine/parallel.h set_thread_num_threads, per thread) at nice +10 (setpriority on its own thread id). So
//     a retrain uses one core at low priority; predictions preempt it and keep the other core. The dataset
//     statistics scan runs at nice +10 too.
//   * Shutdown: request_shutdown() (`mriscan serve` calls it on SIGTERM/SIGINT) turns /ready to 503, stops
//     accepting and tells the retraining worker to stop at its next batch (the job goes back to the queue); the
//     requests already queued are served and listen() returns when they have finished; stop() then waits for
//     the worker.
//   * Replicas: several `mriscan serve` processes may share one state directory (SQLite in WAL mode). Each
//     names itself (`replica`: /health, the X-Replica header of every response), follows the active version
//     recorded in the database every `sync_interval_ms` (model_registry.h), and claims retraining jobs under a
//     lease (job_queue.h). docs/replicas.md has the whole design and what changes for more than one host.
//   * Limits: request heads (431), bodies without Content-Length (411), `max_body_bytes` (413), multi-range
//     requests (416), all checked by the gate before a worker is involved; only JPEG and PNG reach a decoder
//     (415 otherwise), `image_limits` checked from the image header before pixels are allocated (decompression
//     bombs, 400), and every decoded image is resized to the model's input at once, so a request holds at most
//     `max_batch_files` small images; `max_batch_files` per /predict_batch; `decode_budget_pixel_scans` of
//     decoding work per request, all files and progressive scans counted (io/decode_budget.h, 413).
// What it is not: the CLI (tools/cmd_serve.cpp parses flags into ServerConfig).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "server/context.h"
#include "server/state/database.h"
#include "server/transport/http_server.h"

namespace mriscan {

class App {
 public:
  explicit App(ServerConfig config);
  ~App();

  // Binds host:port (port 0 = any free port); returns the port. Throws std::runtime_error on failure.
  int bind(const std::string& host, int port);
  // Blocks until stop(). A listener that fails (an accept error httplib does not retry) is bound again with
  // back-off (listener_retry_ms doubling, 7 tries: 6.35 s at 50 ms); false when that fails: the caller should
  // exit non-zero so a supervisor restarts it.
  bool listen();
  // The listener failed and could not be restored (start()'s thread has ended).
  bool listener_lost() const { return listener_lost_; }
  // bind + listen on a background thread; returns once the server accepts connections.
  int start(const std::string& host = "127.0.0.1", int port = 0);
  void stop();
  // Graceful shutdown, for the signal-handling thread: /ready turns 503, accepting stops, the requests already
  // waiting are served, then listen() returns. The owner then calls stop().
  void request_shutdown();

  const std::string& startup_message() const { return startup_message_; }
  ServerContext& context() { return *context_; }
  ModelRegistry& registry() { return *registry_; }
  JobQueue& jobs() { return *jobs_; }

 private:
  void import_initial_models();
  void follow_loop();  // the registry follower thread (replicas)
  void register_routes();
  void install_error_handlers();
  std::string rejection_response(int status, const std::string& message, const RequestHead* head);

  ServerConfig config_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<ModelRegistry> registry_;
  std::unique_ptr<UploadStore> uploads_;
  std::unique_ptr<Retrainer> retrainer_;
  std::unique_ptr<JobQueue> jobs_;
  std::unique_ptr<DatasetStats> dataset_stats_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<ReviewQueue> reviews_;
  std::unique_ptr<DriftMonitor> drift_;
  ServerMetrics metrics_;
  GateCounters gate_counters_;
  std::unique_ptr<ThreadBudget> inference_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<ServerContext> context_;
  std::thread listen_thread_;
  std::thread follower_;
  std::mutex follower_mutex_;
  std::condition_variable follower_wake_;
  bool follower_stopping_ = false;
  std::string startup_message_;
  bool stopped_ = false;
  std::string host_;  // as bound, for restoring the listener
  int port_ = 0;
  std::atomic<bool> listener_lost_{false};
};

}  // namespace mriscan
