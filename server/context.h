// What every route handler is given: the server's configuration (ServerConfig, filled by `mriscan serve` from its
// options) and references to the components the App owns (ServerContext). Route files include this, not app.h,
// so a handler sees the parts it may call and nothing of how the App starts, listens and stops.
// What it is not: the components themselves (each has its own header) or the concurrency policy (server/app.h).
#pragma once

#include <atomic>
#include <chrono>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "io/image_io.h"
#include "server/audit_log.h"
#include "server/dataset_stats.h"
#include "server/drift_monitor.h"
#include "server/explain_admission.h"
#include "server/metrics.h"
#include "server/model_registry.h"
#include "server/retrainer.h"
#include "server/review_queue.h"
#include "server/router.h"
#include "server/state/job_queue.h"
#include "server/thread_budget.h"
#include "server/transport/connection_gate.h"
#include "server/upload_store.h"

namespace mriscan {

struct ServerConfig {
  std::string state_dir;                         // SQLite database, uploads/, models/, runs/
  std::string database_url;  // "postgresql://...": the state in PostgreSQL (state_dir then holds caches and runs/)
  std::string initial_model;                     // a model file to import as v1 when the registry is empty
  std::vector<std::string> initial_class_names;  // its class names, if it has none (a torchvision state dict)
  std::string models_dir;                        // or: import every *.safetensors under this folder (newest active)
  std::string data_dir;                          // training data for retraining and /dataset_stats ("" = none)
  std::string web_root;                          // folder with openapi.json and ui/ ("" = <source dir>/server)
  std::string admin_token;                       // required by admin routes; must not be empty
  std::string inference_model_name = "mriscan";  // the model's name in the Open Inference Protocol's /v2 routes
  double set_alpha = kDefaultSetAlpha;  // the level of the prediction set each answer leads with (infer/conformal.h)
  std::string replica;         // this process's name in /health, X-Replica and job owners ("" = <hostname>-<pid>)
  int sync_interval_ms = 500;  // how often the active version is read from the database (replicas follow it)
  size_t max_body_bytes = 64u << 20;
  DecodeLimits image_limits = {.max_pixels = 16'000'000, .max_side = 8192};
  int http_threads = 8;
  int max_queued_requests = 256;  // requests (not connections) waiting for a worker
  int max_batch_files = 64;
  // Decoding work per request (io/decode_budget.h), counted for every file and every progressive scan. A full batch
  // of 64 dataset scans (224 x 224 colour, baseline) costs 9.6 M; 64 baseline 512 x 512 colour files 50 M, and 64
  // such files progressive (libjpeg's standard 10-scan script) 235 M. Beyond it: 413.
  int64_t decode_budget_pixel_scans = 256'000'000;
  // Grad-CAM requests waiting for the one that runs (server/explain_admission.h); beyond them, 503. The App lowers
  // it so that running and waiting explanations hold at most half of the http_threads workers (with 1 or 2
  // workers: the running one, none waiting).
  int explain_max_waiting = 2;
  time_t read_timeout_seconds = 10;  // for a request's head and the start of its body
  double body_min_bytes_per_second = 64 << 10;  // the body's minimum average rate after a 2 s grace, else 408
  double ready_busy_seconds = 10;  // /ready answers 503 while every HTTP worker has been busy for longer
  int listener_retry_ms = 50;      // a failed listener is bound again after this, doubling, 7 tries (App::listen)
  int db_busy_timeout_ms = 5000;     // a locked database is retried this long, then 503
  RetrainSettings retrain;           // data_dir is filled from the field above
  JobQueueOptions job_options;       // runs_dir is <state_dir>/runs
  AuditOptions audit;                // the audit trail of every answer (server/audit_log.h)
  ReviewOptions review;              // the answers a person should look at (server/review_queue.h)
  int drift_window = 500;            // answers in the drift window (server/drift_monitor.h)
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
  AuditLog& audit;
  ReviewQueue& reviews;
  DriftMonitor& drift;
  std::chrono::steady_clock::time_point started;
  std::string replica;
  std::atomic<bool> draining{false};  // shutting down: /ready answers 503 so load balancers stop sending
  ExplainAdmission explanations{config.explain_max_waiting};  // Grad-CAM: one runs, a few wait, the rest get 503

  double uptime_seconds() const;
  MetricsGauges gauges();
  // Why the server is not ready (shutting down, no model, every HTTP worker busy for longer than
  // ready_busy_seconds), or "" when it is: what GET /ready and /v2/health/ready answer 503 with.
  std::string readiness_problem();
  // The drift window of the version served, against its validation figures (nullopt: no model loaded).
  std::optional<DriftSnapshot> drift_snapshot();
};

}  // namespace mriscan
