// Small HTTP helpers shared by the route files: JSON responses and errors, the admin token check, multipart
// field access and base64. Every error leaves the server as JSON {"error": message, ...} with a 4xx/5xx status.
// What it is not: routing (server/router.h) or anything model-related.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "server/transport/http.h"
#include <nlohmann/json.hpp>

#include "server/upload_store.h"

namespace mriscan {

// Thrown by handlers; the router turns it into a JSON error response with this status.
struct HttpError : std::runtime_error {
  HttpError(int status, const std::string& message, nlohmann::json details = nullptr)
      : std::runtime_error(message), status(status), details(std::move(details)) {}
  int status;
  nlohmann::json details;
};

// `body` as text with malformed UTF-8 replaced (U+FFFD): what every JSON answer is written with.
std::string json_text(const nlohmann::json& body);
void send_json(httplib::Response& res, int status, const nlohmann::json& body);
void send_error(httplib::Response& res, int status, const std::string& message,
                const nlohmann::json& details = nullptr);

// Admin routes: the token from "Authorization: Bearer <token>" or "X-Admin-Token". Missing -> 401, wrong -> 403
// (compared in constant time, so response timing does not reveal a prefix).
void require_admin(const httplib::Request& req, const std::string& admin_token);

// Files of a multipart field (several parts may share the name). Throws HttpError 400 if the request is not
// multipart/form-data or a file name is not valid UTF-8.
std::vector<UploadFile> multipart_files(const httplib::Request& req, const std::string& field);
// A multipart text field, else the query parameter of that name, else "".
std::string form_value(const httplib::Request& req, const std::string& field);
// A JSON request body ("" is {}), or HttpError 400 naming the parse error or a nesting deeper than kMaxJsonDepth.
constexpr int kMaxJsonDepth = 32;
nlohmann::json parse_json_request(const std::string& text);
nlohmann::json json_body(const httplib::Request& req);
// A positive integer path segment (job ids), or 400 naming `what`.
int64_t parse_id(const std::string& text, const std::string& what);

std::string base64_encode(const std::vector<uint8_t>& bytes);
// Standard base64 with its padding (RFC 4648 section 4); HttpError 400 naming `what` on any other character or
// a length that is not a multiple of 4.
std::string base64_decode(const std::string& text, const std::string& what);

}  // namespace mriscan
