// Route registration with the cross-cutting parts done once: a request id, the admin token check, exceptions
// turned into JSON errors with the right status, timing and per-route metrics. Handlers stay three steps
// (decode -> infer/ or a server component -> encode) and just throw HttpError for bad input.
//
// Exception mapping: HttpError -> its status; UploadRejected -> its status (400, or 415 when every file is of
// an unsupported format); UnsupportedImageFormat -> 415; ImageError, std::invalid_argument -> 400 (the client
// sent something unusable; the message says what); StorageFullError -> 507 and DatabaseBusyError -> 503 with
// Retry-After (nothing was stored); anything else -> 500 naming only the request id (the message, which may
// contain server paths, goes to the log).
// What it is not: a framework; it is a thin layer over httplib::Server::Get/Post.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "server/transport/http.h"

#include "server/metrics.h"

namespace mriscan {

struct RouteInfo {
  std::string method;   // "GET", "POST"
  std::string path;     // OpenAPI form: "/retrain_status/{job_id}"
  bool admin = false;
};

class Router {
 public:
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

  // `replica` goes into the X-Replica header of every response.
  Router(httplib::Server& server, ServerMetrics& metrics, std::string admin_token, std::string replica);

  // `path` uses OpenAPI's {name} placeholders; each becomes a capture group ([^/]+), available in order as
  // req.matches[1], [2], ...
  void get(const std::string& path, Handler handler, bool admin = false);
  void post(const std::string& path, Handler handler, bool admin = false);

  const std::vector<RouteInfo>& routes() const { return routes_; }
  // A fresh id for a request ("<boot prefix>-<counter>"), also used for unrouted errors.
  std::string next_request_id();
  // `bytes` random bytes as lowercase hex (std::random_device).
  static std::string random_hex(int bytes);

 private:
  Handler wrap(const RouteInfo& route, Handler handler);

  httplib::Server& server_;
  ServerMetrics& metrics_;
  std::string admin_token_;
  std::string replica_;
  std::vector<RouteInfo> routes_;
  std::string id_prefix_;
  std::atomic<uint64_t> counter_{0};
};

}  // namespace mriscan
