// Wiring of the service; see app.h, which also states the concurrency policy.
#include "server/app.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "engine/parallel.h"
#include "io/utf8.h"
#include "server/http_util.h"
#include "server/routes.h"

namespace mriscan {
namespace fs = std::filesystem;

double ServerContext::uptime_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
}

std::optional<DriftSnapshot> ServerContext::drift_snapshot() {
  auto model = registry.active();
  if (!model) return std::nullopt;
  const auto& names = model->classifier->class_names();
  const DriftReference reference =
      drift_reference(model->classifier->metadata(), names.size(), alpha_key(config.set_alpha));
  return drift.snapshot(model->number, reference, names);
}

std::string ServerContext::readiness_problem() {
  if (draining) return "not ready: shutting down";
  if (!registry.active()) return "not ready: no model is loaded";
  const double all_busy = queue.all_busy_seconds();
  if (all_busy > config.ready_busy_seconds)
    return "not ready: every HTTP worker has been busy for " + std::to_string(static_cast<int>(all_busy)) + " s";
  return "";
}

MetricsGauges ServerContext::gauges() {
  MetricsGauges gauges;
  if (auto active = registry.active()) gauges.model_version = active->number;
  gauges.queue_depth = queue.depth();
  gauges.open_connections = queue.connections.load();
  gauges.requests_shed = queue.shed.load();
  gauges.requests_timed_out = queue.timed_out.load();
  gauges.inference_threads = inference.threads();
  gauges.inference_threads_busy = inference.busy();
  gauges.inference_waiting = inference.waiting();
  try {
    gauges.jobs_by_status = jobs.counts_by_status();
    gauges.uploads = uploads.count();
    gauges.reviews_pending = reviews.pending();
    gauges.reviews_dropped = reviews.dropped();
  } catch (const DatabaseBusyError&) {  // busy or unreachable: the rest of the scrape still answers
    gauges.database_up = false;
  }
  gauges.audit_queued = static_cast<int64_t>(audit.queued());
  gauges.audit_dropped = audit.dropped();
  gauges.drift = drift_snapshot();
  gauges.uptime_seconds = uptime_seconds();
  return gauges;
}

namespace {

std::string default_replica_name() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0 || !host[0]) std::snprintf(host, sizeof(host), "mriscan");
  return std::string(host) + "-" + std::to_string(getpid());
}

// Names may appear in headers and logs: printable ASCII without spaces, at most 64 characters.
void check_replica_name(const std::string& name) {
  const bool ok = !name.empty() && name.size() <= 64 &&
                  std::all_of(name.begin(), name.end(), [](char c) { return c > ' ' && c < 127; });
  if (!ok) throw std::invalid_argument("serve: the replica name must be 1-64 printable characters without spaces");
}

// On every answer. The web UI keeps the admin token in localStorage, so a script injected into the page could read
// it: the policy runs only the server's own scripts (no inline script, style attribute or eval), and no other site
// may frame the page (clickjacking the admin buttons) or have a response sniffed into another type.
httplib::Headers browser_security_headers() {
  return {{"Content-Security-Policy",
           "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
           "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"},
          {"X-Content-Type-Options", "nosniff"},
          {"X-Frame-Options", "DENY"},
          {"Referrer-Policy", "no-referrer"}};
}

// The model's name is a path segment of the /v2 routes: letters, digits, '.', '_' and '-', at most 64.
void check_inference_model_name(const std::string& name) {
  const bool ok = !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
  if (!ok) throw std::invalid_argument("serve: the inference model name must be 1-64 letters, digits, '.', '_' or '-'");
}

}  // namespace

App::App(ServerConfig config) : config_(std::move(config)) {
  if (config_.state_dir.empty()) throw std::invalid_argument("serve: a state directory is required (--state-dir)");
  if (config_.admin_token.empty()) throw std::invalid_argument("serve: an admin token is required");
  if (config_.web_root.empty()) config_.web_root = std::string(MRISCAN_SOURCE_DIR) + "/server";
  if (config_.replica.empty()) config_.replica = default_replica_name();
  check_replica_name(config_.replica);
  check_inference_model_name(config_.inference_model_name);
  // Grad-CAM requests, running and waiting, hold at most half of the HTTP workers (server/explain_admission.h).
  config_.explain_max_waiting = std::clamp(config_.explain_max_waiting, 0, std::max(0, config_.http_threads / 2 - 1));
  // The job owner: the name plus a token, since a restarted replica keeps its name but is another process.
  config_.job_options.owner = config_.replica + "/" + Router::random_hex(8);
  const fs::path state(config_.state_dir);
  fs::create_directories(state);

  db_ = open_database(config_.database_url, (state / "mriscan.db").string(), config_.db_busy_timeout_ms);
  startup_message_ += "state in " + db_->describe() + "; ";
  // With the files in the database, the local folders are caches, kept apart from a SQLite state's files of record
  // (a state directory once used with SQLite keeps them untouched).
  const fs::path files = db_->holds_files() ? state / "cache" : state;
  registry_ = std::make_unique<ModelRegistry>(*db_, (files / "models").string(),
                                              ModelLoadOptions{.class_names = config_.initial_class_names},
                                              config_.set_alpha);
  import_initial_models();
  startup_message_ += registry_->open();
  uploads_ = std::make_unique<UploadStore>(*db_, (files / "uploads").string(), config_.image_limits);

  config_.retrain.data_dir = config_.data_dir;
  config_.job_options.runs_dir = (state / "runs").string();
  retrainer_ = std::make_unique<Retrainer>(*registry_, *uploads_, config_.retrain);
  jobs_ = std::make_unique<JobQueue>(
      *db_, [this](const JobContext& job) { return retrainer_->run(job); }, config_.job_options);
  dataset_stats_ = std::make_unique<DatasetStats>(config_.data_dir, *uploads_);
  dataset_stats_->start();
  audit_ = std::make_unique<AuditLog>(*db_, config_.audit);
  reviews_ = std::make_unique<ReviewQueue>(*db_, config_.review);
  drift_ = std::make_unique<DriftMonitor>(static_cast<size_t>(std::max(1, config_.drift_window)));

  // HTTP: the connection gate with its limits, JSON errors, one log line per request.
  GateOptions gate;
  gate.workers = config_.http_threads;
  gate.max_waiting_requests = config_.max_queued_requests;
  gate.head_limits.max_body_bytes = config_.max_body_bytes;
  gate.head_timeout_seconds = static_cast<double>(config_.read_timeout_seconds);
  gate.body_min_bytes_per_second = config_.body_min_bytes_per_second;
  gate.probe_paths = {"/health", "/ready", "/v2/health/live", "/v2/health/ready"};
  http_ = std::make_unique<HttpServer>(gate, gate_counters_,
                                       [this](int status, const std::string& message, const RequestHead* head) {
                                         return rejection_response(status, message, head);
                                       });
  router_ = std::make_unique<Router>(*http_, metrics_, config_.admin_token, config_.replica);
  http_->set_default_headers(browser_security_headers());
  install_error_handlers();

  inference_ = std::make_unique<ThreadBudget>(num_threads());
  context_ = std::unique_ptr<ServerContext>(new ServerContext{config_, *registry_, *uploads_, *jobs_, *dataset_stats_,
                                                              metrics_, gate_counters_, *inference_, *router_,
                                                              *audit_, *reviews_, *drift_,
                                                              std::chrono::steady_clock::now(), config_.replica});
  register_routes();
  follower_ = std::thread([this] { follow_loop(); });
}

void App::follow_loop() {
  std::unique_lock<std::mutex> lock(follower_mutex_);
  while (!follower_wake_.wait_for(lock, std::chrono::milliseconds(config_.sync_interval_ms),
                                  [this] { return follower_stopping_; })) {
    lock.unlock();
    try {
      const std::string change = registry_->follow_database();
      if (!change.empty()) std::fprintf(stderr, "mriscan serve: %s\n", change.c_str());
    } catch (const std::exception& error) {  // a busy or failing database: try again at the next tick
      std::fprintf(stderr, "mriscan serve: cannot read the active version: %s\n", error.what());
    }
    lock.lock();
  }
}

App::~App() { stop(); }

namespace {
const char* reason_phrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}
}  // namespace

// The gate's own answers (server/transport/connection_gate.h): the same JSON error body as every other error, and the
// connection is closed after it.
std::string App::rejection_response(int status, const std::string& message, const RequestHead* head) {
  const std::string request_id = router_->next_request_id();
  const std::string body = json_text({{"error", message}, {"status", status}, {"request_id", request_id}});
  metrics_.record_request(status == 503 ? "(shed)" : "(rejected)", head ? head->method : "", status, 0.0);
  if (config_.log_requests)
    std::fprintf(stderr, "[%s] %s -> %d (gate: %s)\n", request_id.c_str(),
                 head && is_known_method(head->method) ? head->method.c_str() : "-", status, message.c_str());
  std::string response = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n";
  response += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  response += "X-Content-Type-Options: nosniff\r\n";
  response += "X-Request-Id: " + request_id + "\r\nX-Replica: " + config_.replica + "\r\nConnection: close\r\n";
  if (status == 503) response += "Retry-After: 1\r\n";
  return response + "\r\n" + body;
}

void App::install_error_handlers() {
  http_->set_error_handler(
      httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
        if (!res.get_header_value("X-Request-Id").empty()) return httplib::Server::HandlerResponse::Unhandled;
        res.set_header("X-Request-Id", router_->next_request_id());
        res.set_header("X-Replica", config_.replica);
        const RequestStream* stream = RequestStream::current();
        if (stream && stream->timed_out()) res.status = 408;
        std::string message = "HTTP error " + std::to_string(res.status);
        if (res.status == 404)
          message =
              "no route for " + req.method + " " + printable_utf8(req.path.substr(0, 200)) + " (see /openapi.json)";
        if (res.status == 413)
          message = "request body larger than the limit of " + std::to_string(config_.max_body_bytes) + " bytes";
        if (res.status == 400) message = "malformed HTTP request";
        if (res.status == 408) {
          char rate[32];
          std::snprintf(rate, sizeof(rate), "%g KiB/s", config_.body_min_bytes_per_second / 1024);
          message = std::string("request body arrived slower than ") + rate + " on average";
        }
        send_error(res, res.status, message);
        metrics_.record_request("(unrouted)", req.method, res.status, 0.0);
        return httplib::Server::HandlerResponse::Handled;
      }));
  // Exceptions the router did not map (it maps everything inside handlers): the message may name server paths,
  // so it goes to the log, and the client gets the request id to quote.
  http_->set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr error) {
    std::string message = "unknown exception";
    try {
      if (error) std::rethrow_exception(error);
    } catch (const std::exception& e) {
      message = e.what();
    } catch (...) {
    }
    const std::string request_id = router_->next_request_id();
    std::fprintf(stderr, "[%s] internal error: %s\n", request_id.c_str(), message.c_str());
    res.set_header("X-Request-Id", request_id);
    if (!res.has_header("X-Replica")) res.set_header("X-Replica", config_.replica);
    send_error(res, 500, "internal error (request id " + request_id + ")");
  });
  http_->set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    if (!config_.log_requests) return;
    // Request id, route, status, time and model version; never pixels or file names. The path as printable
    // text: a decoded %0A in it must not start a forged log line.
    std::fprintf(stderr, "[%s] %s %s -> %d %s%s%s\n", res.get_header_value("X-Request-Id").c_str(), req.method.c_str(),
                 printable_utf8(req.path.substr(0, 200)).c_str(), res.status,
                 res.get_header_value("Server-Timing").c_str(),
                 res.has_header("X-Model-Version") ? " model=" : "", res.get_header_value("X-Model-Version").c_str());
  });
}

// Only into an empty registry, atomically (import_if_empty): replicas starting together import once.
void App::import_initial_models() {
  if (config_.initial_model.empty() && config_.models_dir.empty()) return;
  std::vector<std::pair<std::string, std::string>> files;  // (path, source)
  if (!config_.initial_model.empty()) {
    // Sources name the file, never the server's folders (they are shown by GET /models).
    files.emplace_back(config_.initial_model, "initial: " + fs::path(config_.initial_model).filename().string());
  } else {
    if (!fs::is_directory(config_.models_dir))
      throw std::runtime_error("serve: --models-dir '" + config_.models_dir + "' is not a directory");
    // Every model file under the folder, oldest first, so version numbers follow creation order.
    std::vector<fs::path> found;
    for (const auto& entry : fs::recursive_directory_iterator(config_.models_dir))
      if (entry.is_regular_file() && entry.path().filename() == "model.safetensors") found.push_back(entry.path());
    std::sort(found.begin(), found.end(),
              [](const fs::path& a, const fs::path& b) { return fs::last_write_time(a) < fs::last_write_time(b); });
    for (const fs::path& file : found)
      files.emplace_back(file.string(), "initial: " + (file.parent_path().filename() / file.filename()).string());
  }
  if (!registry_->empty()) {
    startup_message_ += "the registry already has versions, so --model/--models-dir were not imported; ";
    return;
  }
  std::string problems;
  const bool imported = !registry_->import_if_empty(files, problems).empty();
  startup_message_ += problems;
  if (!imported && !config_.initial_model.empty() && registry_->empty())
    throw std::runtime_error("serve: " + problems);  // the one model given does not load
  if (!imported && !config_.models_dir.empty() && registry_->empty())
    startup_message_ += "no loadable model.safetensors under " + config_.models_dir + "; ";
}

void App::register_routes() {
  register_prediction_routes(*router_, *context_);
  register_audit_routes(*router_, *context_);
  register_review_routes(*router_, *context_);
  register_training_routes(*router_, *context_);
  register_model_routes(*router_, *context_);
  register_service_routes(*router_, *context_);
  register_inference_protocol_routes(*router_, *context_);
}

int App::bind(const std::string& host, int port) {
  const int bound = http_->bind_with_full_backlog(host, port);
  if (bound <= 0) throw std::runtime_error("serve: cannot bind " + host + ":" + std::to_string(port));
  host_ = host;
  port_ = bound;
  return bound;
}

// httplib's accept loop closes the listening socket and returns false on an accept error other than EMFILE, EINTR
// and EAGAIN (ENOBUFS, ENOMEM, a socket shut down under it), and the process went on without a listener. A
// shutdown meanwhile closes whatever listener is bound (close_listener), so listen_after_bind returns true.
bool App::listen() {
  bool restored = true;
  while (restored && !http_->listen_after_bind() && !context_->draining) {
    std::fprintf(stderr, "mriscan serve: the listening socket on port %d failed; binding it again\n", port_);
    restored = false;
    auto delay = std::chrono::milliseconds(config_.listener_retry_ms);
    for (int attempt = 0; attempt < 7 && !restored && !context_->draining; ++attempt, delay *= 2) {
      std::this_thread::sleep_for(delay);
      restored = http_->bind_with_full_backlog(host_, port_) > 0;
    }
    if (context_->draining) {
      http_->close_listener();  // bound just before the shutdown: nothing will accept on it
      return true;
    }
    std::fprintf(stderr, restored ? "mriscan serve: listening again on port %d\n"
                                  : "mriscan serve: cannot listen on port %d again; stopping\n", port_);
  }
  listener_lost_ = !restored;
  return restored;
}

int App::start(const std::string& host, int port) {
  int bound = bind(host, port);
  listen_thread_ = std::thread([this] { listen(); });
  for (int i = 0; i < 5000 && !http_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return bound;
}

void App::request_shutdown() {
  context_->draining = true;
  if (jobs_) jobs_->request_stop();  // the retraining job stops at its next batch and is requeued
  http_->close_listener();           // stop accepting; the gate serves what is waiting before listen() returns
}

void App::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (context_) context_->draining = true;
  if (http_) http_->close_listener();  // stop accepting; listen() returns once the waiting requests are served
  if (listen_thread_.joinable()) listen_thread_.join();
  if (jobs_) jobs_->stop();
  {
    std::lock_guard<std::mutex> lock(follower_mutex_);
    follower_stopping_ = true;
  }
  follower_wake_.notify_all();
  if (follower_.joinable()) follower_.join();
  if (audit_) audit_->stop();  // writes what is queued
  if (reviews_) reviews_->stop();
}

}  // namespace mriscan
