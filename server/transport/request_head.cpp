// Request-head parsing and admission limits; see request_head.h.
#include "server/transport/request_head.h"

#include <algorithm>
#include <cctype>

namespace mriscan {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// Without leading and trailing spaces and tabs (HTTP's "optional whitespace").
std::string_view trim_ows(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

bool contains_token(std::string_view list, std::string_view token) {
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = std::min(list.find(',', start), list.size());
    if (iequals(trim_ows(list.substr(start, end - start)), token)) return true;
    start = end + 1;
  }
  return false;
}

// RFC 9110 token characters (method and header names).
bool is_token(std::string_view text) {
  if (text.empty()) return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

HeadParse reject(HeadRejection& rejection, int status, std::string message) {
  rejection = {status, std::move(message)};
  return HeadParse::kRejected;
}

}  // namespace

bool is_known_method(std::string_view method) {
  for (std::string_view known : {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
    if (method == known) return true;
  return false;
}

HeadParse parse_request_head(std::string_view bytes, const HeadLimits& limits, RequestHead& head,
                             HeadRejection& rejection) {
  head = RequestHead{};
  const size_t end = bytes.find("\r\n\r\n");
  if (end == std::string_view::npos || end + 4 > limits.max_head_bytes) {
    if (bytes.size() >= limits.max_head_bytes)
      return reject(rejection, 431,
                    "request head larger than " + std::to_string(limits.max_head_bytes) + " bytes");
    // Count the complete lines so far: a flood of tiny header lines is refused before the head ends.
    if (std::count(bytes.begin(), bytes.end(), '\n') > limits.max_header_lines)
      return reject(rejection, 431, "more than " + std::to_string(limits.max_header_lines) + " header lines");
    return HeadParse::kIncomplete;
  }
  head.head_bytes = end + 4;
  std::string_view text = bytes.substr(0, end + 2);  // every line keeps its CRLF

  // Request line: METHOD SP TARGET SP HTTP/1.x
  const size_t line_end = text.find("\r\n");
  std::string_view line = text.substr(0, line_end);
  const size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return reject(rejection, 400, "malformed request line");
  std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                   version = line.substr(sp2 + 1);
  if (!is_token(method)) return reject(rejection, 400, "malformed request line");
  head.method = std::string(method);
  if (!is_known_method(method)) return reject(rejection, 501, "method not supported");
  if (version != "HTTP/1.1" && version != "HTTP/1.0")
    return reject(rejection, 400, "unsupported HTTP version (HTTP/1.0 and HTTP/1.1 are served)");
  if (target.empty() || target[0] != '/' || target.find_first_of(" \t") != std::string_view::npos)
    return reject(rejection, 400, "malformed request target");
  head.path = std::string(target.substr(0, target.find('?')));
  bool keep_alive_requested = false;

  int lines = 0;
  for (size_t pos = line_end + 2; pos < text.size();) {
    const size_t next = text.find("\r\n", pos);
    std::string_view header = text.substr(pos, next - pos);
    pos = next + 2;
    if (++lines > limits.max_header_lines)
      return reject(rejection, 431, "more than " + std::to_string(limits.max_header_lines) + " header lines");
    const size_t colon = header.find(':');
    // No folded lines and no space before the colon: both are classic request-smuggling tricks.
    if (colon == std::string_view::npos || !is_token(header.substr(0, colon)))
      return reject(rejection, 400, "malformed header line");
    std::string_view name = header.substr(0, colon), value = trim_ows(header.substr(colon + 1));
    if (iequals(name, "Content-Length")) {
      if (value.empty() || value.size() > 18 || value.find_first_not_of("0123456789") != std::string_view::npos)
        return reject(rejection, 400, "malformed Content-Length");
      const uint64_t length = std::stoull(std::string(value));
      if (head.has_content_length && length != head.content_length)
        return reject(rejection, 400, "conflicting Content-Length headers");
      head.content_length = length;
      head.has_content_length = true;
    } else if (iequals(name, "Transfer-Encoding")) {
      head.chunked = true;
    } else if (iequals(name, "Content-Encoding")) {
      head.encoded = head.encoded || !(value.empty() || iequals(value, "identity"));
    } else if (iequals(name, "Expect")) {
      head.expects_continue = iequals(value, "100-continue");
    } else if (iequals(name, "Range")) {
      head.multi_range = head.multi_range || value.find(',') != std::string_view::npos;
    } else if (iequals(name, "Connection")) {
      head.wants_close = head.wants_close || contains_token(value, "close");
      keep_alive_requested = keep_alive_requested || contains_token(value, "keep-alive");
    }
  }
  if (version == "HTTP/1.0" && !keep_alive_requested) head.wants_close = true;

  if (head.chunked)
    return reject(rejection, 411, "chunked request bodies are not accepted: send the body with a Content-Length");
  const bool body_method = head.method == "POST" || head.method == "PUT" || head.method == "PATCH";
  if (body_method && !head.has_content_length)
    return reject(rejection, 411, head.method + " needs a Content-Length header");
  if (head.content_length > limits.max_body_bytes)
    return reject(rejection, 413,
                  "request body larger than the limit of " + std::to_string(limits.max_body_bytes) + " bytes");
  if (head.encoded)
    return reject(rejection, 415, "compressed request bodies are not accepted: send it without Content-Encoding");
  if (head.multi_range)
    return reject(rejection, 416, "multiple byte ranges are not served: request one range or the whole file");
  return HeadParse::kComplete;
}

}  // namespace mriscan
