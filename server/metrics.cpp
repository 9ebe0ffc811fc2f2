// Prometheus text rendering and latency percentiles; see metrics.h.
#include "server/metrics.h"

#include "server/transport/request_head.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace mriscan {
namespace {

// Request latency buckets in seconds: 1 ms .. 60 s, covering a cached 404 and a slow batch prediction.
const std::vector<double> kLatencyBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                            0.5,   1.0,    2.5,   5.0,  10.0,  30.0, 60.0};
const std::vector<double> kBatchBounds = {1, 2, 4, 8, 16, 32, 64};

std::string format_number(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  std::ostringstream out;
  out.precision(10);
  out << value;
  return out.str();
}

// Label values escape backslash, double quote and line feed (Prometheus text exposition format).
std::string escape_label(const std::string& value) {
  std::string escaped;
  for (char c : value) {
    if (c == '\\' || c == '"') escaped += '\\';
    if (c == '\n') {
      escaped += "\\n";
      continue;
    }
    escaped += c;
  }
  return escaped;
}

// The drift window's figures (server/drift_monitor.h); the validation figures beside them as reference="validation".
std::string render_drift(const DriftSnapshot& drift) {
  std::string out;
  auto gauge = [&out](const std::string& name, const std::string& help, const std::vector<std::string>& lines) {
    out += "# HELP " + name + " " + help + "\n# TYPE " + name + " gauge\n";
    for (const std::string& line : lines) out += name + line + "\n";
  };
  auto pair = [&](double live, std::optional<double> reference) {
    std::vector<std::string> lines = {"{window=\"live\"} " + format_number(live)};
    if (reference) lines.push_back("{window=\"validation\"} " + format_number(*reference));
    return lines;
  };
  const DriftReference& ref = drift.reference;
  gauge("mriscan_drift_answers", "Answers in the drift window.", {" " + std::to_string(drift.answers)});
  gauge("mriscan_drift_withheld_share", "Share of answers withheld as out of distribution.",
        pair(drift.withheld_share, ref.known ? std::optional<double>(ref.withheld_share) : std::nullopt));
  gauge("mriscan_drift_mean_confidence", "Mean confidence of the answers given.",
        pair(drift.mean_confidence, ref.known ? std::optional<double>(ref.mean_confidence) : std::nullopt));
  if (drift.mean_set_size)
    gauge("mriscan_drift_mean_set_size", "Mean prediction-set size.", pair(*drift.mean_set_size, ref.mean_set_size));
  std::vector<std::string> mix;
  for (size_t k = 0; k < drift.class_mix.size(); ++k) {
    const std::string label = "class=\"" + escape_label(drift.class_names[k]) + "\"";
    mix.push_back("{" + label + ",window=\"live\"} " + format_number(drift.class_mix[k]));
    if (ref.known) mix.push_back("{" + label + ",window=\"validation\"} " + format_number(ref.class_mix[k]));
  }
  gauge("mriscan_drift_class_share", "Class mix of the answers given.", mix);
  gauge("mriscan_drift", "1 when a drift threshold is crossed (docs/drift.md).", {" " + std::to_string(drift.drift)});
  return out;
}

// Nearest-rank percentile of an unsorted sample (copied and sorted here).
double percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  size_t rank = static_cast<size_t>(std::ceil(q * values.size()));
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

nlohmann::json latency_json(const std::deque<double>& recent_ms) {
  std::vector<double> values(recent_ms.begin(), recent_ms.end());
  double mean = 0.0;
  for (double v : values) mean += v;
  if (!values.empty()) mean /= values.size();
  return {{"samples", values.size()},
          {"mean_ms", mean},
          {"p50_ms", percentile(values, 0.50)},
          {"p95_ms", percentile(values, 0.95)},
          {"p99_ms", percentile(values, 0.99)}};
}

void push_recent(std::deque<double>& recent, double value, size_t capacity) {
  recent.push_back(value);
  if (recent.size() > capacity) recent.pop_front();
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)), bucket_counts_(upper_bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  size_t bucket = std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) - upper_bounds_.begin();
  ++bucket_counts_[bucket];  // first bound >= value, i.e. value <= le
  sum_ += value;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  const std::string prefix = labels.empty() ? "" : labels + ",";
  int64_t cumulative = 0;
  for (size_t b = 0; b <= upper_bounds_.size(); ++b) {
    cumulative += bucket_counts_[b];
    std::string le = b < upper_bounds_.size() ? format_number(upper_bounds_[b]) : "+Inf";
    out += name + "_bucket{" + prefix + "le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
  }
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + braces + " " + format_number(sum_) + "\n";
  out += name + "_count" + braces + " " + std::to_string(count_) + "\n";
}

ServerMetrics::ServerMetrics() : inference_seconds_(kLatencyBounds), batch_sizes_(kBatchBounds) {}

void ServerMetrics::record_request(const std::string& route, const std::string& method, int status,
                                   double seconds) {
  // Label values a client controls are folded: any method outside the known set is "OTHER", and routes are
  // the registered patterns or one of the fixed labels "(unrouted)", "(rejected)", "(shed)".
  const std::string method_label = is_known_method(method) ? method : "OTHER";
  std::lock_guard<std::mutex> lock(mutex_);
  ++request_counts_[{route, method_label, status}];
  request_seconds_.try_emplace(route, kLatencyBounds).first->second.observe(seconds);
  push_recent(recent_ms_[route], seconds * 1000.0, kRecentSamples);
}

void ServerMetrics::record_inference(double seconds, int batch_size) {
  std::lock_guard<std::mutex> lock(mutex_);
  inference_seconds_.observe(seconds);
  batch_sizes_.observe(batch_size);
  push_recent(recent_inference_ms_, seconds * 1000.0, kRecentSamples);
}

std::string ServerMetrics::render_prometheus(const MetricsGauges& gauges) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  out += "# HELP mriscan_http_requests_total HTTP requests by route pattern, method and status code.\n";
  out += "# TYPE mriscan_http_requests_total counter\n";
  for (const auto& [key, count] : request_counts_) {
    const auto& [route, method, status] = key;
    out += "mriscan_http_requests_total{route=\"" + escape_label(route) + "\",method=\"" + escape_label(method) +
           "\",status=\"" + std::to_string(status) + "\"} " + std::to_string(count) + "\n";
  }
  out += "# HELP mriscan_http_request_duration_seconds Time from routing to response, by route pattern.\n";
  out += "# TYPE mriscan_http_request_duration_seconds histogram\n";
  for (const auto& [route, histogram] : request_seconds_)
    histogram.render(out, "mriscan_http_request_duration_seconds", "route=\"" + escape_label(route) + "\"");
  out += "# HELP mriscan_inference_duration_seconds Model time per prediction call (preprocessing + forward).\n";
  out += "# TYPE mriscan_inference_duration_seconds histogram\n";
  inference_seconds_.render(out, "mriscan_inference_duration_seconds", "");
  out += "# HELP mriscan_prediction_batch_size Images per prediction call.\n";
  out += "# TYPE mriscan_prediction_batch_size histogram\n";
  batch_sizes_.render(out, "mriscan_prediction_batch_size", "");
  // One-value series.
  auto single = [&out](const char* name, const char* type, const char* help, int64_t value) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    out += std::string(name) + " " + std::to_string(value) + "\n";
  };
  single("mriscan_inference_threads", "gauge",
         "Kernel threads that concurrent predictions share.", gauges.inference_threads);
  single("mriscan_inference_threads_busy", "gauge",
         "Kernel threads held by predictions in progress.", gauges.inference_threads_busy);
  single("mriscan_inference_waiting", "gauge",
         "Decoded requests waiting for a kernel thread.", gauges.inference_waiting);
  single("mriscan_request_queue_depth", "gauge", "Requests being served or waiting for a worker.", gauges.queue_depth);
  single("mriscan_open_connections", "gauge",
         "Connections held by the connection gate and the workers.", gauges.open_connections);
  single("mriscan_requests_shed_total", "counter",
         "Requests answered 503 because the request queue was full.", gauges.requests_shed);
  single("mriscan_requests_timed_out_total", "counter",
         "Requests answered 408: their head did not arrive in time.", gauges.requests_timed_out);
  single("mriscan_model_version", "gauge",
         "Number n of the active model version vn (0: no model loaded).", gauges.model_version);
  out += "# HELP mriscan_retrain_jobs Retraining jobs by status.\n";
  out += "# TYPE mriscan_retrain_jobs gauge\n";
  for (const auto& [status, count] : gauges.jobs_by_status)
    out += "mriscan_retrain_jobs{status=\"" + status + "\"} " + std::to_string(count) + "\n";
  if (gauges.uploads) single("mriscan_uploads", "gauge", "Stored training uploads.", *gauges.uploads);
  single("mriscan_database_up", "gauge", "1 if the state database answered this scrape, else 0.", gauges.database_up);
  single("mriscan_reviews_pending", "gauge", "Answers waiting for a reviewer.", gauges.reviews_pending);
  single("mriscan_reviews_dropped_total", "counter", "Reviews dropped for the queue's bound.", gauges.reviews_dropped);
  single("mriscan_audit_queued", "gauge", "Audit rows not yet written to the database.", gauges.audit_queued);
  single("mriscan_audit_dropped_total", "counter", "Audit rows dropped from a full queue.", gauges.audit_dropped);
  if (gauges.drift) out += render_drift(*gauges.drift);
  out += "# HELP mriscan_uptime_seconds Seconds since the server started.\n";
  out += "# TYPE mriscan_uptime_seconds gauge\n";
  out += "mriscan_uptime_seconds " + format_number(gauges.uptime_seconds) + "\n";
  return out;
}

nlohmann::json ServerMetrics::summary() const {
  std::lock_guard<std::mutex> lock(mutex_);
  nlohmann::json routes = nlohmann::json::object();
  for (const auto& [route, recent] : recent_ms_) {
    int64_t count = 0, errors = 0;
    for (const auto& [key, n] : request_counts_) {
      if (std::get<0>(key) != route) continue;
      count += n;
      if (std::get<2>(key) >= 400) errors += n;
    }
    nlohmann::json entry = latency_json(recent);
    entry["count"] = count;
    entry["errors"] = errors;
    routes[route] = entry;
  }
  nlohmann::json inference = latency_json(recent_inference_ms_);
  inference["count"] = inference_seconds_.count();
  return {{"routes", routes}, {"inference", inference}};
}

}  // namespace mriscan
