// The head of an HTTP/1.1 request (request line + header lines + blank line), parsed from bytes that have
// arrived but not yet been consumed, so the connection gate (server/transport/connection_gate.h) can enforce the limits
// that cpp-httplib 0.11 does not, before any worker thread or body buffer is spent on the request:
//   * the head must end within `max_head_bytes` and `max_header_lines`           -> else 431
//   * a body needs a Content-Length (chunked bodies are refused)                   -> else 411
//   * Content-Length at most `max_body_bytes`                                      -> else 413
//   * conflicting or malformed Content-Length, bad request line                    -> 400
//   * a Range header with more than one range (2000 overlapping ranges of one file
//     would stream the file 2000 times)                                            -> 416
//   * a Content-Encoding other than identity (httplib would inflate a 1 MB gzip body
//     into 1 GB of memory before any handler or token check ran)                   -> 415
// The parser is pure (bytes in, verdict out) so it is fuzzed on its own (tests/fuzz/fuzz_request_head.cpp).
// What it is not: the full HTTP parser; httplib parses the same bytes again for routing once they pass here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mriscan {

struct HeadLimits {
  size_t max_head_bytes = 16 * 1024;
  int max_header_lines = 100;
  uint64_t max_body_bytes = 64u << 20;
};

struct RequestHead {
  std::string method;             // as sent ("GET"); may be anything until checked
  std::string path;               // the request target without its query
  size_t head_bytes = 0;          // request line + headers + the blank line
  uint64_t content_length = 0;    // 0 when absent
  bool has_content_length = false;
  bool chunked = false;           // Transfer-Encoding present
  bool multi_range = false;       // Range: bytes=a-b,c-d
  bool encoded = false;           // Content-Encoding other than identity (gzip, deflate, br, ...)
  bool expects_continue = false;  // Expect: 100-continue (the client sends its body after our 100 Continue)
  bool wants_close = false;       // Connection: close, or HTTP/1.0 without keep-alive
  size_t request_bytes() const { return head_bytes + content_length; }
};

enum class HeadParse { kIncomplete, kComplete, kRejected };

struct HeadRejection {
  int status = 400;
  std::string message;
};

// Parses the head at the start of `bytes`. kIncomplete: the blank line has not arrived yet and no limit is
// exceeded. kRejected: `rejection` says why (status and a message for the client).
HeadParse parse_request_head(std::string_view bytes, const HeadLimits& limits, RequestHead& head,
                             HeadRejection& rejection);

// Methods the server knows; anything else is reported under one label ("OTHER") so a client cannot create
// metric series at will.
bool is_known_method(std::string_view method);

}  // namespace mriscan
