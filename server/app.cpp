// Wiring of the service; see app.h. The concurrency policy is stated in tools/cmd_serve.cpp.
#include "server/app.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "server/http_util.h"
#include "server/routes.h"

namespace mriscan {
namespace fs = std::filesystem;

double ServerContext::uptime_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
}

MetricsGauges ServerContext::gauges() {
  MetricsGauges gauges;
  if (auto active = registry.active()) gauges.model_version = active->number;
  gauges.queue_depth = queue.depth();
  gauges.requests_shed = queue.shed.load();
  gauges.jobs_by_status = jobs.counts_by_status();
  gauges.uploads = uploads.count();
  gauges.uptime_seconds = uptime_seconds();
  return gauges;
}

App::App(ServerConfig config) : config_(std::move(config)) {
  if (config_.state_dir.empty()) throw std::invalid_argument("serve: a state directory is required (--state-dir)");
  if (config_.admin_token.empty()) throw std::invalid_argument("serve: an admin token is required");
  if (config_.web_root.empty()) config_.web_root = std::string(MRISCAN_SOURCE_DIR) + "/server";
  const fs::path state(config_.state_dir);
  fs::create_directories(state);

  db_ = std::make_unique<Database>((state / "mriscan.db").string());
  registry_ = std::make_unique<ModelRegistry>(*db_, (state / "models").string());
  import_initial_models();
  startup_message_ += registry_->open();
  uploads_ = std::make_unique<UploadStore>(*db_, (state / "uploads").string(), config_.image_limits);

  config_.retrain.data_dir = config_.data_dir;
  config_.retrain.runs_dir = (state / "runs").string();
  retrainer_ = std::make_unique<Retrainer>(*registry_, *uploads_, config_.retrain);
  jobs_ = std::make_unique<JobQueue>(
      *db_, [this](const JobContext& job) { return retrainer_->run(job); }, config_.job_options);
  dataset_stats_ = std::make_unique<DatasetStats>(config_.data_dir, *uploads_);
  dataset_stats_->start();

  // HTTP: bounded worker pool, limits, JSON errors, one log line per request.
  http_.new_task_queue = [this] {
    return new RequestQueue(config_.http_threads, config_.max_queued_requests, queue_counters_);
  };
  http_.set_payload_max_length(config_.max_body_bytes);
  http_.set_read_timeout(config_.read_timeout_seconds, 0);
  http_.set_keep_alive_timeout(2);
  router_ = std::make_unique<Router>(http_, metrics_, config_.admin_token);
  http_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!RequestQueue::is_shedding_thread()) return httplib::Server::HandlerResponse::Unhandled;
    res.set_header("X-Request-Id", router_->next_request_id());
    res.set_header("Retry-After", "1");
    res.set_header("Connection", "close");
    send_error(res, 503, "server busy: the request queue is full, retry shortly");
    metrics_.record_request("(shed)", req.method, 503, 0.0);
    return httplib::Server::HandlerResponse::Handled;
  });
  http_.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                        httplib::Response& res) {
    if (!res.get_header_value("X-Request-Id").empty()) return httplib::Server::HandlerResponse::Unhandled;
    res.set_header("X-Request-Id", router_->next_request_id());
    std::string message = "HTTP error " + std::to_string(res.status);
    if (res.status == 404) message = "no route for " + req.method + " " + req.path + " (see /openapi.json)";
    if (res.status == 413)
      message = "request body larger than the limit of " + std::to_string(config_.max_body_bytes) + " bytes";
    if (res.status == 400) message = "malformed HTTP request";
    send_error(res, res.status, message);
    metrics_.record_request("(unrouted)", req.method, res.status, 0.0);
    return httplib::Server::HandlerResponse::Handled;
  }));
  http_.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr error) {
    std::string message = "internal error";
    try {
      if (error) std::rethrow_exception(error);
    } catch (const std::exception& e) {
      message += std::string(": ") + e.what();
    } catch (...) {
    }
    send_error(res, 500, message);
  });
  http_.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    if (!config_.log_requests) return;
    // Request id, route, status, time and model version; never pixels or file names.
    std::fprintf(stderr, "[%s] %s %s -> %d %s%s%s\n", res.get_header_value("X-Request-Id").c_str(),
                 req.method.c_str(), req.path.c_str(), res.status, res.get_header_value("Server-Timing").c_str(),
                 res.has_header("X-Model-Version") ? " model=" : "", res.get_header_value("X-Model-Version").c_str());
  });

  context_ = std::unique_ptr<ServerContext>(new ServerContext{config_, *registry_, *uploads_, *jobs_, *dataset_stats_,
                                                               metrics_, queue_counters_, *router_,
                                                               std::chrono::steady_clock::now()});
  register_routes();
}

App::~App() { stop(); }

void App::import_initial_models() {
  if (!registry_->empty()) {
    if (!config_.initial_model.empty() || !config_.models_dir.empty())
      startup_message_ += "the registry already has versions, so --model/--models-dir were not imported; ";
    return;
  }
  if (!config_.initial_model.empty()) {
    ModelVersion version = registry_->register_file(config_.initial_model, "initial: " + config_.initial_model);
    registry_->activate(version.number);
    return;
  }
  if (config_.models_dir.empty()) return;
  if (!fs::is_directory(config_.models_dir))
    throw std::runtime_error("serve: --models-dir '" + config_.models_dir + "' is not a directory");
  // Every model file under the folder, oldest first, so version numbers follow creation order.
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(config_.models_dir))
    if (entry.is_regular_file() && entry.path().filename() == "model.safetensors") files.push_back(entry.path());
  std::sort(files.begin(), files.end(),
            [](const fs::path& a, const fs::path& b) { return fs::last_write_time(a) < fs::last_write_time(b); });
  int64_t newest = 0;
  for (const fs::path& file : files) {
    try {
      newest = registry_->register_file(file.string(), "initial: " + file.string()).number;
    } catch (const std::exception& error) {
      startup_message_ += "skipped " + file.string() + " (" + error.what() + "); ";
    }
  }
  if (newest > 0) registry_->activate(newest);
  else startup_message_ += "no loadable model.safetensors under " + config_.models_dir + "; ";
}

void App::register_routes() {
  register_prediction_routes(*router_, *context_);
  register_training_routes(*router_, *context_);
  register_model_routes(*router_, *context_);
  register_service_routes(*router_, *context_);
}

int App::bind(const std::string& host, int port) {
  int bound = port == 0 ? http_.bind_to_any_port(host) : (http_.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) throw std::runtime_error("serve: cannot bind " + host + ":" + std::to_string(port));
  return bound;
}

void App::listen() { http_.listen_after_bind(); }

int App::start(const std::string& host, int port) {
  int bound = bind(host, port);
  listen_thread_ = std::thread([this] { listen(); });
  for (int i = 0; i < 5000 && !http_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return bound;
}

void App::request_shutdown(double timeout_seconds) {
  context_->draining = true;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
  while (queue_counters_.queued.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  http_.stop();  // stop accepting; requests in progress finish before listen() returns
}

void App::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (context_) context_->draining = true;
  http_.stop();  // stop accepting; listen() returns once the requests in progress have finished
  if (listen_thread_.joinable()) listen_thread_.join();
  if (jobs_) jobs_->stop();
}

}  // namespace mriscan
