// The mriscan service as an object: state (SQLite, uploads, model versions), the retraining worker, and the HTTP
// server with every route. `mriscan serve` builds one and listens; tests build one on a free port in-process.
//
// Life cycle: the constructor opens <state_dir>/mriscan.db, recovers (interrupted jobs -> failed, the last good
// model active), imports the initial model when the registry is empty, and starts the retraining worker and the
// dataset scan. bind() + listen() (or start() for a background thread) serve; stop() stops accepting, drains the
// requests already accepted (httplib joins its task queue), then stops the worker. The destructor calls stop().
//
// Concurrency policy (2 cores shared by serving and training), with the ServerConfig fields that set it:
//   * HTTP I/O: connections wait in the connection gate (server/connection_gate.h), not in threads; a request
//     whose head has arrived goes to one of `http_threads` workers, at most `max_queued_requests` waiting (then
//     503 with Retry-After, the body discarded). /health and /ready have a thread of their own, so they answer
//     while every worker is busy. Heads and bodies have deadlines (`read_timeout_seconds`, then 408).
//   * Predictions: the process-wide kernel thread count (`mriscan serve --threads`, default the physical cores)
//     is shared by concurrent predictions through a ThreadBudget (server/thread_budget.h): a lone request gets
//     every core, under load each gets one and as many run at once as there are cores (measured to beat both
//     one-at-a-time and micro-batching on this machine: docs/serving.md). The model pointer is copied per
//     request, so a model swap never blocks or fails a prediction.
//   * Retraining: ONE background worker (server/job_queue.h) with a thread budget of 1 kernel thread
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
//     `max_batch_files` small images; `max_batch_files` per /predict_batch.
// What it is not: the CLI (tools/cmd_serve.cpp parses flags into ServerConfig).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "io/image_io.h"
#include "server/database.h"
#include "server/dataset_stats.h"
#include "server/http.h"
#include "server/http_server.h"
#include "server/job_queue.h"
#include "server/metrics.h"
#include "server/model_registry.h"
#include "server/retrainer.h"
#include "server/router.h"
#include "server/thread_budget.h"
#include "server/upload_store.h"

namespace mriscan {

struct ServerConfig {
  std::string state_dir;                         // SQLite database, uploads/, models/, runs/
  std::string initial_model;                     // a model file to import as v1 when the registry is empty
  std::vector<std::string> initial_class_names;  // its class names, if it has none (a torchvision state dict)
  std::string models_dir;                        // or: import every *.safetensors under this folder (newest active)
  std::string data_dir;                          // training data for retraining and /dataset_stats ("" = none)
  std::string web_root;                          // folder with openapi.json and ui/ ("" = <source dir>/server)
  std::string admin_token;                       // required by admin routes; must not be empty
  std::string replica;         // this process's name in /health, X-Replica and job owners ("" = <hostname>-<pid>)
  int sync_interval_ms = 500;  // how often the active version is read from the database (replicas follow it)
  size_t max_body_bytes = 64u << 20;
  DecodeLimits image_limits = {.max_pixels = 16'000'000, .max_side = 8192};
  int http_threads = 8;
  int max_queued_requests = 256;  // requests (not connections) waiting for a worker
  int max_batch_files = 64;
  time_t read_timeout_seconds = 10;  // for a request's head; its body gets this plus 1 s per 64 KiB
  int db_busy_timeout_ms = 5000;     // a locked database is retried this long, then 503
  RetrainSettings retrain;           // data_dir and runs_dir are filled from the fields above
  JobQueueOptions job_options;
  bool log_requests = true;
};

struct ServerContext {
  const ServerConfig& config;
  ModelRegistry& registry;
  UploadStore& uploads;
  JobQueue& jobs;
  DatasetStats& dataset_stats;
  ServerMetrics& metrics;
  GateCounters& queue;
  ThreadBudget& inference;
  const Router& router;
  std::chrono::steady_clock::time_point started;
  std::string replica;
  std::atomic<bool> draining{false};  // shutting down: /ready answers 503 so load balancers stop sending
  std::mutex explanations{};          // Grad-CAM requests run one at a time (server/routes_prediction.cpp)

  double uptime_seconds() const;
  MetricsGauges gauges();
};

class App {
 public:
  explicit App(ServerConfig config);
  ~App();

  // Binds host:port (port 0 = any free port); returns the port. Throws std::runtime_error on failure.
  int bind(const std::string& host, int port);
  void listen();  // blocks until stop()
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
};

}  // namespace mriscan
