// The request wrapper; see router.h.
#include "server/router.h"

#include <chrono>
#include <cstdio>
#include <random>
#include <regex>

#include "io/atomic_file.h"
#include "io/decode_budget.h"
#include "io/image_io.h"
#include "server/state/database.h"
#include "server/http_util.h"

namespace mriscan {
namespace {

// "/models/{version}/activate" -> "/models/([^/]+)/activate"
std::string to_regex(const std::string& path) {
  static const std::regex placeholder(R"(\{[a-z_]+\})");
  return std::regex_replace(path, placeholder, "([^/]+)");
}

void log_internal(const httplib::Response& res, const char* what) {
  std::fprintf(stderr, "[%s] internal error: %s\n", res.get_header_value("X-Request-Id").c_str(), what);
}

}  // namespace

Router::Router(httplib::Server& server, ServerMetrics& metrics, std::string admin_token, std::string replica)
    : server_(server), metrics_(metrics), admin_token_(std::move(admin_token)), replica_(std::move(replica)),
      id_prefix_(random_hex(4)) {}

std::string Router::random_hex(int bytes) {
  std::random_device device;
  std::string hex;
  char pair[3];
  for (int i = 0; i < bytes; ++i) {
    std::snprintf(pair, sizeof(pair), "%02x", device() & 0xff);
    hex += pair;
  }
  return hex;
}

std::string Router::next_request_id() { return id_prefix_ + "-" + std::to_string(++counter_); }

void Router::get(const std::string& path, Handler handler, bool admin) {
  routes_.push_back({"GET", path, admin});
  server_.Get(to_regex(path), wrap(routes_.back(), std::move(handler)));
}

void Router::post(const std::string& path, Handler handler, bool admin) {
  routes_.push_back({"POST", path, admin});
  server_.Post(to_regex(path), wrap(routes_.back(), std::move(handler)));
}

Router::Handler Router::wrap(const RouteInfo& route, Handler handler) {
  return [this, route, handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
    const auto start = std::chrono::steady_clock::now();
    res.set_header("X-Request-Id", next_request_id());
    res.set_header("X-Replica", replica_);
    try {
      if (route.admin) require_admin(req, admin_token_);
      handler(req, res);
      if (res.status == -1) res.status = 200;
      if (res.status == 200 && req.ranges.size() == 1) res.status = 206;  // httplib sends just that range
    } catch (const HttpError& error) {
      send_error(res, error.status, error.what(), error.details);
    } catch (const UploadRejected& error) {
      send_error(res, error.status, error.what(), error.problems.empty() ? nlohmann::json() : error.problems);
    } catch (const DecodeBudgetExceeded& error) {  // the request's images, not one of them: 413
      send_error(res, 413, error.what());
    } catch (const UnsupportedImageFormat& error) {
      send_error(res, 415, error.what());
    } catch (const ImageError& error) {
      send_error(res, 400, std::string("not a usable image: ") + error.what());
    } catch (const StorageFullError& error) {
      log_internal(res, error.what());
      send_error(res, 507, "the server's disk is full: nothing was stored; retry later");
    } catch (const DatabaseUnavailableError& error) {
      log_internal(res, error.what());
      res.set_header("Retry-After", "2");
      send_error(res, 503, "the server's database cannot be reached: retry shortly");
    } catch (const DatabaseBusyError& error) {
      log_internal(res, error.what());
      res.set_header("Retry-After", "1");
      send_error(res, 503, "the server's database is busy: nothing was changed; retry shortly");
    } catch (const std::invalid_argument& error) {
      send_error(res, 400, error.what());
    } catch (const std::exception& error) {
      // The message may name server paths: it goes to the log, the client gets the request id to quote.
      log_internal(res, error.what());
      send_error(res, 500, "internal error (request id " + res.get_header_value("X-Request-Id") + ")");
    } catch (...) {
      send_error(res, 500, "internal error (request id " + res.get_header_value("X-Request-Id") + ")");
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    res.set_header("Server-Timing", "app;dur=" + std::to_string(seconds * 1000.0));
    metrics_.record_request(route.path, route.method, res.status, seconds);
  };
}

}  // namespace mriscan
