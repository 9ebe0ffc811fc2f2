// GET /audit and GET /audit.csv (admin): the audit trail (server/audit_log.h) with filters and paging, as JSON or
// as CSV for a spreadsheet. Query parameters: from, to (UTC, "2026-12-07" or "2026-12-07T13:00:00Z"), version
// ("v3"), answer (a class name or "withheld"), request_id, input_sha256, before_id (the page's `next_before_id`),
// limit (1-1000; the CSV takes up to 100000 rows per request).
#include <regex>

#include "server/http_util.h"
#include "server/routes.h"

namespace mriscan {
namespace {

// "YYYY-MM-DD", optionally followed by "THH:MM[:SS[.fff]]" and "Z": compared as text, as the rows' times are.
std::string utc_time(const std::string& text, const std::string& name) {
  static const std::regex kShape(R"(\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?)?Z?)");
  if (!std::regex_match(text, kShape))
    throw HttpError(400, "'" + name + "' must be a UTC time like 2026-12-07 or 2026-12-07T13:00:00Z");
  return text.back() == 'Z' ? text.substr(0, text.size() - 1) : text;
}

std::optional<std::string> text_param(const httplib::Request& req, const std::string& name) {
  if (!req.has_param(name)) return std::nullopt;
  const std::string value = req.get_param_value(name);
  if (value.empty() || value.size() > 128) throw HttpError(400, "'" + name + "' must be 1-128 characters");
  return value;
}

int64_t number_param(const httplib::Request& req, const std::string& name, int64_t low, int64_t high) {
  const std::string text = req.get_param_value(name);
  if (text.empty() || text.size() > 12 || text.find_first_not_of("0123456789") != std::string::npos ||
      std::stoll(text) < low || std::stoll(text) > high)
    throw HttpError(400, "'" + name + "' must be an integer from " + std::to_string(low) + " to " +
                             std::to_string(high));
  return std::stoll(text);
}

AuditQuery audit_query(const httplib::Request& req, int max_limit) {
  AuditQuery query;
  if (auto from = text_param(req, "from")) query.from = utc_time(*from, "from");
  if (auto to = text_param(req, "to")) query.to = utc_time(*to, "to");
  if (auto version = text_param(req, "version")) {
    query.model_version = parse_version(*version);
    if (!query.model_version) throw HttpError(400, "'version' looks like 'v3' or '3'");
  }
  query.answer = text_param(req, "answer");
  query.request_id = text_param(req, "request_id");
  query.input_sha256 = text_param(req, "input_sha256");
  if (req.has_param("before_id")) query.before_id = number_param(req, "before_id", 1, int64_t{1} << 53);
  query.limit = req.has_param("limit") ? static_cast<int>(number_param(req, "limit", 1, max_limit))
                                       : std::min(100, max_limit);
  return query;
}

// GET /audit
void get_audit(ServerContext& context, const httplib::Request& req, httplib::Response& res) {
  const AuditQuery query = audit_query(req, 1000);
  std::vector<nlohmann::json> rows = context.audit.find(query);
  nlohmann::json body = {{"entries", rows}, {"count", rows.size()}, {"dropped", context.audit.dropped()}};
  body["next_before_id"] = rows.size() == static_cast<size_t>(query.limit) ? rows.back()["id"] : nlohmann::json();
  send_json(res, 200, body);
}

// One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break, quotes doubled.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

// GET /audit.csv
void get_audit_csv(ServerContext& context, const httplib::Request& req, httplib::Response& res) {
  const char* columns[] = {"id", "at", "request_id", "route", "replica", "model_version", "input_sha256",
                           "answer", "out_of_distribution", "prediction_set", "confidence"};
  std::string csv;
  for (const char* column : columns) csv += std::string(csv.empty() ? "" : ",") + column;
  csv += "\r\n";
  for (const nlohmann::json& row : context.audit.find(audit_query(req, 100'000))) {
    std::string line;
    for (const char* column : columns) {
      const nlohmann::json& value = row[column];
      line += std::string(line.empty() ? "" : ",") +
              csv_field(value.is_string() ? value.get<std::string>() : value.is_null() ? "" : value.dump());
    }
    csv += line + "\r\n";
  }
  res.status = 200;
  res.set_header("Content-Disposition", "attachment; filename=\"mriscan-audit.csv\"");
  res.set_content(csv, "text/csv; charset=utf-8");
}

}  // namespace

void register_audit_routes(Router& router, ServerContext& context) {
  router.get("/audit", bind_context(context, get_audit), /*admin=*/true);
  router.get("/audit.csv", bind_context(context, get_audit_csv), /*admin=*/true);
}

}  // namespace mriscan
