// libFuzzer: the request-head parser (server/transport/request_head.h) and the metrics it feeds. Whatever the bytes,
// the parser answers complete / incomplete / rejected with a 4xx-5xx status, a complete head fits the bytes it was
// given, and the Prometheus text stays parseable when the parsed method is recorded as a label.
#include <cstdint>
#include <cstdlib>
#include <regex>
#include <sstream>
#include <string>

#include "server/metrics.h"
#include "server/transport/request_head.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  mriscan::HeadLimits limits;
  limits.max_head_bytes = 2048;
  limits.max_header_lines = 20;
  limits.max_body_bytes = 1 << 20;
  mriscan::RequestHead head;
  mriscan::HeadRejection rejection;
  switch (mriscan::parse_request_head(bytes, limits, head, rejection)) {
    case mriscan::HeadParse::kComplete:
      if (head.head_bytes > bytes.size() || head.head_bytes > limits.max_head_bytes) std::abort();
      if (head.content_length > limits.max_body_bytes || !mriscan::is_known_method(head.method)) std::abort();
      if (head.encoded || head.chunked) std::abort();  // a compressed or chunked body never gets past the head
      break;
    case mriscan::HeadParse::kRejected:
      if (rejection.status < 400 || rejection.status > 599 || rejection.message.empty()) std::abort();
      break;
    case mriscan::HeadParse::kIncomplete:
      if (bytes.size() >= limits.max_head_bytes) std::abort();
      break;
  }
  // The server labels by route pattern (never the raw path) and by the parsed method, folded.
  mriscan::ServerMetrics metrics;
  metrics.record_request("(rejected)", head.method, rejection.status, 0.001);
  const std::string text = metrics.render_prometheus({});
  static const std::regex sample(R"(^[a-z_]+(\{([a-z_]+="([^"\\\n]|\\.)*",?)*\})? [-+0-9.eInf]+$)");
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line[0] != '#' && !std::regex_match(line, sample)) std::abort();
  return 0;
}
