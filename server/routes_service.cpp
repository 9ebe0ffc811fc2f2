// Service routes: GET /health (liveness), /ready (readiness), /metrics (Prometheus), /stats (JSON summary for the
// UI), /dataset_stats, /openapi.json and /docs; and the web UI's static files.
#include <filesystem>
#include <fstream>
#include <sstream>

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

}  // namespace

void register_service_routes(Router& router, ServerContext& context) {
  const std::filesystem::path web_root(context.config.web_root);

  router.get("/health", [&context](const httplib::Request&, httplib::Response& res) {
    auto model = context.registry.active();
    send_json(res, 200, {{"status", "ok"}, {"replica", context.replica}, {"model_loaded", model != nullptr},
                         {"model_version", model ? nlohmann::json(model->name) : nullptr},
                         {"uptime_seconds", context.uptime_seconds()}});
  });

  router.get("/ready", [&context](const httplib::Request&, httplib::Response& res) {
    if (context.draining) throw HttpError(503, "not ready: shutting down");
    auto model = context.registry.active();
    if (!model) throw HttpError(503, "not ready: no model is loaded");
    send_json(res, 200, {{"ready", true}, {"model_version", model->name}});
  });

  router.get("/metrics", [&context](const httplib::Request&, httplib::Response& res) {
    res.status = 200;
    res.set_content(context.metrics.render_prometheus(context.gauges()), "text/plain; version=0.0.4");
  });

  router.get("/stats", [&context](const httplib::Request&, httplib::Response& res) {
    MetricsGauges gauges = context.gauges();
    auto model = context.registry.active();
    send_json(res, 200, {{"uptime_seconds", gauges.uptime_seconds},
                         {"model_version", model ? nlohmann::json(model->name) : nullptr},
                         {"queue_depth", gauges.queue_depth},
                         {"requests_shed", gauges.requests_shed},
                         {"jobs", gauges.jobs_by_status},
                         {"uploads", gauges.uploads},
                         {"latency", context.metrics.summary()}});
  });

  router.get("/dataset_stats", [&context](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, context.dataset_stats.snapshot());
  });

  router.get("/openapi.json", [web_root](const httplib::Request&, httplib::Response& res) {
    send_file(res, web_root / "openapi.json", "application/json");
  });
  router.get("/docs", [web_root](const httplib::Request&, httplib::Response& res) {
    send_file(res, web_root / "ui" / "docs.html", "text/html; charset=utf-8");
  });
  router.get("/", [web_root](const httplib::Request&, httplib::Response& res) {
    send_file(res, web_root / "ui" / "index.html", "text/html; charset=utf-8");
  });
  router.get("/ui/app.js", [web_root](const httplib::Request&, httplib::Response& res) {
    send_file(res, web_root / "ui" / "app.js", "text/javascript; charset=utf-8");
  });
  router.get("/ui/style.css", [web_root](const httplib::Request&, httplib::Response& res) {
    send_file(res, web_root / "ui" / "style.css", "text/css; charset=utf-8");
  });
  // Chart.js from npm (installed by the set-up into server/ui/node_modules, never committed).
  router.get("/vendor/chart.umd.js", [web_root](const httplib::Request&, httplib::Response& res) {
    send_file(res, web_root / "ui" / "node_modules" / "chart.js" / "dist" / "chart.umd.js",
              "text/javascript; charset=utf-8", " (run `npm ci --prefix server/ui` to install Chart.js)");
  });
}

}  // namespace mriscan
