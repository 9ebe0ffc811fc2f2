// JSON responses, admin token check, multipart access, base64; see http_util.h.
#include "server/http_util.h"

#include <algorithm>

#include "io/utf8.h"

namespace mriscan {

// Any string a client sent may sit somewhere in `body`: malformed UTF-8 becomes U+FFFD instead of an exception,
// so every answer is valid UTF-8 JSON.
std::string json_text(const nlohmann::json& body) {
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(json_text(body), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message, const nlohmann::json& details) {
  nlohmann::json body = {{"error", message}, {"status", status}};
  if (!details.is_null()) body["details"] = details;
  const std::string request_id = res.get_header_value("X-Request-Id");
  if (!request_id.empty()) body["request_id"] = request_id;
  send_json(res, status, body);
}

namespace {
// Touches every byte of `presented` whatever matches, so the timing reveals at most its length.
bool equal_constant_time(const std::string& presented, const std::string& expected) {
  if (expected.empty()) return false;
  unsigned char difference = presented.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < presented.size(); ++i)
    difference |= static_cast<unsigned char>(presented[i] ^ expected[i % expected.size()]);
  return difference == 0;
}
}  // namespace

void require_admin(const httplib::Request& req, const std::string& admin_token) {
  std::string presented = req.get_header_value("X-Admin-Token");
  const std::string authorization = req.get_header_value("Authorization");
  const std::string bearer = "Bearer ";
  if (presented.empty() && authorization.compare(0, bearer.size(), bearer) == 0)
    presented = authorization.substr(bearer.size());
  if (presented.empty())
    throw HttpError(401, "this route needs the admin token: send 'Authorization: Bearer <token>'");
  if (!equal_constant_time(presented, admin_token)) throw HttpError(403, "the admin token is not valid");
}

std::vector<UploadFile> multipart_files(const httplib::Request& req, const std::string& field) {
  if (!req.is_multipart_form_data())
    throw HttpError(400, "expected a multipart/form-data body with the field '" + field + "'");
  std::vector<UploadFile> files;
  auto range = req.files.equal_range(field);
  for (auto it = range.first; it != range.second; ++it) {
    // Checked before anything is stored: the name is echoed in answers and kept in the database.
    if (!is_valid_utf8(it->second.filename))
      throw HttpError(400, "the file name '" + printable_utf8(it->second.filename) + "' is not valid UTF-8");
    files.push_back({it->second.filename, it->second.content});
  }
  return files;
}

std::string form_value(const httplib::Request& req, const std::string& field) {
  if (req.has_file(field)) return req.get_file_value(field).content;
  return req.get_param_value(field);
}

namespace {
// The deepest nesting of arrays and objects in `text`, counted outside strings. nlohmann::json parses
// iteratively but dumps and compares recursively: a million-deep body would overflow a worker's stack.
int json_nesting_depth(const std::string& text) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}
}  // namespace

nlohmann::json parse_json_request(const std::string& text) {
  if (text.empty()) return nlohmann::json::object();
  if (json_nesting_depth(text) > kMaxJsonDepth)
    throw HttpError(400, "the JSON body is nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  nlohmann::json body = nlohmann::json::parse(text, nullptr, false);
  if (body.is_discarded()) throw HttpError(400, "the request body is not valid JSON");
  return body;
}

nlohmann::json json_body(const httplib::Request& req) { return parse_json_request(req.body); }

int64_t parse_id(const std::string& text, const std::string& what) {
  if (text.empty() || text.size() > 15 || text.find_first_not_of("0123456789") != std::string::npos)
    throw HttpError(400, what + " must be a positive integer, got '" + printable_utf8(text.substr(0, 40)) + "'");
  return std::stoll(text);
}

std::string base64_encode(const std::vector<uint8_t>& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    // 3 bytes -> 24 bits -> 4 six-bit symbols; '=' pads a final group of 1 or 2 bytes.
    uint32_t group = uint32_t(bytes[i]) << 16;
    if (i + 1 < bytes.size()) group |= uint32_t(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) group |= bytes[i + 2];
    out += kAlphabet[(group >> 18) & 63];
    out += kAlphabet[(group >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(group >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[group & 63] : '=';
  }
  return out;
}

std::string base64_decode(const std::string& text, const std::string& what) {
  if (text.size() % 4 != 0) throw HttpError(400, what + " is not base64: its length is not a multiple of 4");
  auto value = [&](char c) -> uint32_t {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    throw HttpError(400, what + " is not base64: it has a character outside the alphabet");
  };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    // 4 symbols -> 24 bits -> 3 bytes; '=' only as the padding of the last group.
    const bool last = i + 4 == text.size();
    const int padding = last ? (text[i + 3] == '=') + (text[i + 2] == '=') : 0;
    if (padding == 1 && text[i + 2] == '=') throw HttpError(400, what + " is not base64: misplaced padding");
    uint32_t group = value(text[i]) << 18 | value(text[i + 1]) << 12;
    if (padding < 2) group |= value(text[i + 2]) << 6;
    if (padding < 1) group |= value(text[i + 3]);
    out += static_cast<char>(group >> 16);
    if (padding < 2) out += static_cast<char>((group >> 8) & 0xff);
    if (padding < 1) out += static_cast<char>(group & 0xff);
  }
  return out;
}

}  // namespace mriscan
