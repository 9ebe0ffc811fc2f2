// Server metrics: counters and histograms recorded by the request wrapper and the prediction routes, rendered in
// the Prometheus text exposition format (version 0.0.4) for GET /metrics, plus a JSON summary (recent latency
// percentiles per route) for GET /stats and the UI's Models tab.
//
// Every number here is measured: request counts by route, method and status; request latency and model
// inference time histograms; batch sizes. Gauges that belong to other components (queue depth, model version,
// retraining jobs) are passed in at render time, so this file owns no state it would have to keep in sync.
// What it is not: a general metrics library (no label cardinality control beyond "route is a pattern, never
// a raw path").
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/drift_monitor.h"

namespace mriscan {

// A cumulative histogram with fixed upper bounds (the "le" buckets) plus +Inf, a sum and a count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // Appends `name_bucket{labels,le="..."}`, `name_sum{labels}` and `name_count{labels}` lines.
  void render(std::string& out, const std::string& name, const std::string& labels) const;
  int64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> upper_bounds_;
  std::vector<int64_t> bucket_counts_;  // (B + 1), the last is +Inf; not cumulative until rendered
  double sum_ = 0.0;
  int64_t count_ = 0;
};

// Values owned elsewhere, sampled when /metrics is scraped.
struct MetricsGauges {
  int64_t model_version = 0;  // 0 when no model is loaded
  int queue_depth = 0;
  int open_connections = 0;
  int64_t requests_shed = 0;
  int64_t requests_timed_out = 0;
  int inference_threads = 0, inference_threads_busy = 0, inference_waiting = 0;  // server/thread_budget.h
  // From the database: left empty when it does not answer (database_up false), so a scrape never fails for it.
  bool database_up = true;
  std::map<std::string, int64_t> jobs_by_status;  // queued, running, completed, failed, cancelled
  std::optional<int64_t> uploads;
  int64_t reviews_pending = 0, reviews_dropped = 0;
  int64_t audit_queued = 0, audit_dropped = 0;
  std::optional<DriftSnapshot> drift;  // none without a model
  double uptime_seconds = 0.0;
};

class ServerMetrics {
 public:
  ServerMetrics();

  // route is the registered pattern's name ("/retrain_status/{job_id}"), never the raw path.
  void record_request(const std::string& route, const std::string& method, int status, double seconds);
  void record_inference(double seconds, int batch_size);

  std::string render_prometheus(const MetricsGauges& gauges) const;
  // {"routes": {route: {"count", "errors", "p50_ms", "p95_ms", "p99_ms", "mean_ms"}}, "inference": {...}}
  nlohmann::json summary() const;

 private:
  static constexpr size_t kRecentSamples = 1000;  // per route, for percentiles

  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, int>, int64_t> request_counts_;  // (route, method, status)
  std::map<std::string, Histogram> request_seconds_;                              // by route
  std::map<std::string, std::deque<double>> recent_ms_;                           // by route
  Histogram inference_seconds_;
  Histogram batch_sizes_;
  std::deque<double> recent_inference_ms_;
};

}  // namespace mriscan
