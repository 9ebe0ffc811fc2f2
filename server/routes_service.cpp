// Service routes: GET /health (liveness), /ready (readiness), /metrics (Prometheus), /stats (JSON summary for the
// UI), /dataset_stats, /openapi.json and /docs; and the web UI's static files. Each handler is one function;
// register_service_routes at the bottom binds them, and the static files from one table.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/kernels/dispatch.h"
#include "server/http_util.h"
#include "server/routes.h"

namespace mriscan {
namespace {

// Static files come from fixed names under the web root (never from the request path), so there is nothing
// to traverse.
void send_file(httplib::Response& res, const std::filesystem::path& path, const std::string& mime,
               const std::string& hint = "") {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw HttpError(404, "missing file " + path.filename().string() + hint);  // never the server's folders
  std::ostringstream content;
  content << in.rdbuf();
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  res.set_content(content.str(), mime);
}

struct StaticFile {
  const char* route;
  const char* path;  // under the web root
  const char* mime;
  const char* hint;  // appended to the 404 message
};

constexpr StaticFile kStaticFiles[] = {
    {"/openapi.json", "openapi.json", "application/json", ""},
    {"/docs", "ui/docs.html", "text/html; charset=utf-8", ""},
    {"/", "ui/index.html", "text/html; charset=utf-8", ""},
    {"/ui/app.js", "ui/app.js", "text/javascript; charset=utf-8", ""},
    {"/ui/docs.js", "ui/docs.js", "text/javascript; charset=utf-8", ""},
    {"/ui/oversight.js", "ui/oversight.js", "text/javascript; charset=utf-8", ""},
    {"/ui/style.css", "ui/style.css", "text/css; charset=utf-8", ""},
    // Chart.js from npm (installed by the set-up into server/ui/node_modules, never committed).
    {"/vendor/chart.umd.js", "ui/node_modules/chart.js/dist/chart.umd.js", "text/javascript; charset=utf-8",
     " (run `npm ci --prefix server/ui` to install Chart.js)"},
};

// GET /health: alive, which model it serves, the kernel set it runs (the instruction set chosen at start-up), how
// many HTTP workers are held (the probe thread answers even when all of them are), and the drift window
// (server/drift_monitor.h: drift shows in the body, never in the status).
void get_health(ServerContext& context, const httplib::Request&, httplib::Response& res) {
  auto model = context.registry.active();
  const nlohmann::json workers = {{"total", context.queue.workers.load()},
                                  {"busy", context.queue.workers_busy.load()},
                                  {"queued", context.queue.queued.load()},
                                  {"all_busy_seconds", context.queue.all_busy_seconds()}};
  const std::optional<DriftSnapshot> drift = context.drift_snapshot();
  send_json(res, 200, {{"status", "ok"}, {"replica", context.replica}, {"model_loaded", model != nullptr},
                       {"model_version", model ? nlohmann::json(model->name) : nullptr},
                       {"uptime_seconds", context.uptime_seconds()}, {"isa", fast_kernels().name},
                       {"workers", workers}, {"drift", drift ? drift->to_json() : nlohmann::json()}});
}

// GET /ready: 503 while draining, before a model is loaded, or while every HTTP worker has been busy for longer
// than ready_busy_seconds (so an orchestrator sends traffic elsewhere instead of into a full queue).
void get_ready(ServerContext& context, const httplib::Request&, httplib::Response& res) {
  const std::string problem = context.readiness_problem();
  if (!problem.empty()) throw HttpError(503, problem);
  send_json(res, 200, {{"ready", true}, {"model_version", context.registry.active()->name}});
}

// GET /metrics: Prometheus text format.
void get_metrics(ServerContext& context, const httplib::Request&, httplib::Response& res) {
  res.status = 200;
  res.set_content(context.metrics.render_prometheus(context.gauges()), "text/plain; version=0.0.4");
}

// GET /stats: the UI's summary.
void get_stats(ServerContext& context, const httplib::Request&, httplib::Response& res) {
  MetricsGauges gauges = context.gauges();
  auto model = context.registry.active();
  send_json(res, 200, {{"uptime_seconds", gauges.uptime_seconds},
                       {"model_version", model ? nlohmann::json(model->name) : nullptr},
                       {"queue_depth", gauges.queue_depth},
                       {"requests_shed", gauges.requests_shed},
                       {"jobs", gauges.jobs_by_status},
                       {"uploads", gauges.uploads ? nlohmann::json(*gauges.uploads) : nlohmann::json()},
                       {"database_up", gauges.database_up},
                       {"latency", context.metrics.summary()}});
}

// GET /dataset_stats
void get_dataset_stats(ServerContext& context, const httplib::Request&, httplib::Response& res) {
  send_json(res, 200, context.dataset_stats.snapshot());
}

}  // namespace

void register_service_routes(Router& router, ServerContext& context) {
  router.get("/health", bind_context(context, get_health));
  router.get("/ready", bind_context(context, get_ready));
  router.get("/metrics", bind_context(context, get_metrics));
  router.get("/stats", bind_context(context, get_stats));
  router.get("/dataset_stats", bind_context(context, get_dataset_stats));
  const std::filesystem::path web_root(context.config.web_root);
  for (const StaticFile& file : kStaticFiles)
    router.get(file.route, [web_root, file](const httplib::Request&, httplib::Response& res) {
      send_file(res, web_root / file.path, file.mime, file.hint);
    });
}

}  // namespace mriscan
