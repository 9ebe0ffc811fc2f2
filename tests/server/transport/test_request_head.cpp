// The request-head parser on its own (server/transport/request_head.h): complete, incomplete and rejected heads,
// and the request-smuggling shapes it must refuse.
#include <gtest/gtest.h>

#include "server/transport/request_head.h"

namespace mriscan {
namespace {

struct Parsed {
  HeadParse result;
  RequestHead head;
  HeadRejection rejection;
};

Parsed parse(const std::string& bytes, HeadLimits limits = {}) {
  Parsed p;
  p.result = parse_request_head(bytes, limits, p.head, p.rejection);
  return p;
}

TEST(RequestHead, CompleteHeadGivesMethodPathLengthAndSize) {
  const std::string head = "POST /predict?gradcam=1 HTTP/1.1\r\nHost: x\r\ncontent-length:  42 \r\n\r\n";
  Parsed p = parse(head + "body...");
  ASSERT_EQ(p.result, HeadParse::kComplete);
  EXPECT_EQ(p.head.method, "POST");
  EXPECT_EQ(p.head.path, "/predict");
  EXPECT_EQ(p.head.content_length, 42u);
  EXPECT_EQ(p.head.head_bytes, head.size());
  EXPECT_EQ(p.head.request_bytes(), head.size() + 42);
  EXPECT_FALSE(p.head.wants_close);
}

TEST(RequestHead, IncompleteUntilTheBlankLine) {
  EXPECT_EQ(parse("GET /health HTTP/1.1\r\nHost: x\r\n").result, HeadParse::kIncomplete);
  EXPECT_EQ(parse("GET /hea").result, HeadParse::kIncomplete);
  EXPECT_EQ(parse("").result, HeadParse::kIncomplete);
}

TEST(RequestHead, ConnectionCloseAndHttp10) {
  EXPECT_TRUE(parse("GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n").head.wants_close);
  EXPECT_TRUE(parse("GET / HTTP/1.0\r\n\r\n").head.wants_close);
  EXPECT_FALSE(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").head.wants_close);
}

TEST(RequestHead, RejectionsCarryTheRightStatus) {
  HeadLimits small;
  small.max_head_bytes = 256;
  small.max_header_lines = 5;
  small.max_body_bytes = 1000;
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 6; ++i) many += "A: b\r\n";
  const std::vector<std::pair<std::string, int>> cases = {
      {"GET / HTTP/1.1\r\nX: " + std::string(300, 'a') + "\r\n\r\n", 431},   // head too large (complete)
      {"GET / HTTP/1.1\r\nX: " + std::string(300, 'a'), 431},                // head too large (still arriving)
      {many + "\r\n", 431},                                                   // too many lines (complete)
      {many, 431},                                                            // too many lines (still arriving)
      {"POST /predict HTTP/1.1\r\n\r\n", 411},                                // no length
      {"POST /predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411},  // chunked
      {"PUT /x HTTP/1.1\r\nContent-Length: 1001\r\n\r\n", 413},
      {"GET /f HTTP/1.1\r\nRange: bytes=0-1,5-9\r\n\r\n", 416},
      {"BREW / HTTP/1.1\r\n\r\n", 501},
      {"G\"E{T} / HTTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/2.0\r\n\r\n", 400},
      {"GET nopath HTTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400},  // space before the colon
      {"GET / HTTP/1.1\r\n folded\r\n\r\n", 400},         // obsolete line folding
      {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400},
      {"POST /p HTTP/1.1\r\nContent-Length: 9\r\nContent-Encoding: gzip\r\n\r\n", 415},
      {"POST /p HTTP/1.1\r\nContent-Length: 9\r\ncontent-encoding:  BR \r\n\r\n", 415},
      {"POST /p HTTP/1.1\r\nContent-Length: 9\r\nContent-Encoding: identity, deflate\r\n\r\n", 415},
      // A second header may not add a coding the first one hid (httplib reads only the first).
      {"POST /p HTTP/1.1\r\nContent-Length: 9\r\nContent-Encoding: identity\r\nContent-Encoding: gzip\r\n\r\n",
       415},
  };
  for (const auto& [bytes, status] : cases) {
    Parsed p = parse(bytes, small);
    EXPECT_EQ(p.result, HeadParse::kRejected) << bytes.substr(0, 60);
    EXPECT_EQ(p.rejection.status, status) << bytes.substr(0, 60);
    EXPECT_FALSE(p.rejection.message.empty());
  }
  EXPECT_EQ(parse("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Encoding: Identity\r\n\r\n", small).result,
            HeadParse::kComplete);
  // Equal duplicate lengths are allowed (RFC 9112 6.3).
  EXPECT_EQ(parse("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", small).result,
            HeadParse::kComplete);
}

TEST(RequestHead, KnownMethods) {
  for (const char* method : {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
    EXPECT_TRUE(is_known_method(method)) << method;
  for (const char* method : {"", "get", "BREW", "TRACE", "CONNECT", "G\"ET"}) EXPECT_FALSE(is_known_method(method));
}

}  // namespace
}  // namespace mriscan
