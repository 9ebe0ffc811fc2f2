// The audit trail: one row per answered scan (POST /predict, /predict_batch, /explain and the Open Inference
// Protocol's infer), in the state database, so every replica writes to the same trail and admins read it with
// GET /audit (filters, paging) and GET /audit.csv.
//
// A row holds the time, the request id, the route, the replica, the model version, the SHA-256 of the input file's
// bytes, the answer (the class, or "" when it was withheld as out of distribution), the OOD verdict, the prediction
// set and the confidence. Never the image, never a file name: the hash identifies a scan to whoever has it, and
// tells nothing about it to whoever has not.
//
// Writing never waits on the database: record() appends to a queue in memory, and one writer thread inserts what
// has queued every `flush_ms`, 500 rows per transaction (so the trail costs a prediction a mutex and a push; its
// throughput cost is measured in docs/results). If the database is away, rows wait in the queue and are written
// when it is back; beyond `max_queued` rows the oldest are dropped and counted (`dropped()`, in /metrics), which
// is the trail's one way to lose a row. The writer also deletes rows older than `retention_days`, once a minute.
// stop() writes what is queued (bounded by the database answering) before returning.
// What it is not: the request log (stderr, every request) or a store of images (the review queue keeps those).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/state/database.h"

namespace mriscan {

struct AuditEntry {
  std::string at;  // UTC, ISO 8601 with milliseconds ("2026-12-07T13:01:02.345Z"): sorts as text
  std::string request_id, route, replica;
  int64_t model_version = 0;
  std::string input_sha256;
  std::string answer;  // the class; "" when withheld (out of distribution)
  bool out_of_distribution = false;
  nlohmann::json prediction_set;  // class names, or null when the model has no conformal thresholds
  double confidence = 0.0;
};

// GET /audit's filters: all optional, combined with AND. Newest first; `before_id` pages (keyset).
struct AuditQuery {
  std::optional<std::string> from, to;  // ISO 8601 UTC, inclusive / exclusive
  std::optional<int64_t> model_version;
  std::optional<std::string> answer;  // a class name, or "withheld"
  std::optional<std::string> request_id, input_sha256;
  std::optional<int64_t> before_id;
  int limit = 100;
};

struct AuditOptions {
  bool enabled = true;
  int retention_days = 90;  // rows older than this are deleted (0: kept forever)
  int flush_ms = 250;
  size_t max_queued = 100'000;
};

class AuditLog {
 public:
  AuditLog(Database& db, AuditOptions options);
  ~AuditLog();  // stop()

  void record(AuditEntry entry);  // never blocks on the database
  // Rows matching `query`, newest first, each as JSON; `next_before_id` in the caller's hands pages on.
  std::vector<nlohmann::json> find(const AuditQuery& query);
  void flush();  // writes what is queued now (tests, shutdown)
  void stop();
  int64_t dropped() const { return dropped_.load(); }
  size_t queued();

 private:
  void writer_loop();
  void write_queued();
  void write_rows(const std::deque<AuditEntry>& batch, size_t first, size_t end);
  void prune();

  Database& db_;
  AuditOptions options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<AuditEntry> queue_;
  std::mutex writing_;  // held while writing, by the writer thread or flush()
  bool stopping_ = false;
  std::atomic<int64_t> dropped_{0};
  std::thread writer_;
};

// "2026-12-07T13:01:02.345Z", the time of now.
std::string utc_now_iso8601_ms();

}  // namespace mriscan
