// What the server says back to a hostile client, against a real App on loopback: every answer is valid UTF-8
// JSON whatever bytes the client sent (paths, file names, ids), a deeply nested JSON body is refused instead of
// overflowing a worker's stack, every answer carries the browser-facing security headers, and a listening socket
// that fails is bound again (or the server reports it lost). Each case failed before the fix it tests.
#include <sys/socket.h>

#include "tests/support/server_fixture.h"

namespace mriscan::server_test {
namespace {

class ResponseHygiene : public ServerApi {};

// Strict parse: throws on malformed UTF-8 as a browser's JSON.parse would reject the text.
json parse_strict(const std::string& text) { return json::parse(text); }

// Before: json::dump threw on the invalid UTF-8 echoed back: the 404 path dropped the connection without an
// answer, and handlers answered 500 instead of 400 after storing the upload.
TEST_F(ResponseHygiene, InvalidUtf8IsAnsweredAsValidJson) {
  for (const char* path : {"/%FF", "/models/%C0%AF/activate", "/retrain_status/%ED%A0%80", "/%0Aforged-line"}) {
    auto answer = client().Get(path);
    ASSERT_TRUE(answer) << path;
    EXPECT_GE(answer->status, 400) << path;
    EXPECT_LT(answer->status, 500) << path;
    EXPECT_NO_THROW(parse_strict(answer->body)) << path << ": " << answer->body;
  }
  auto post = client().Post("/retrain/%FF/cancel", admin_headers(), "", "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 400) << post->body;
  EXPECT_NO_THROW(parse_strict(post->body));

  const int64_t uploads_before = body_of(client().Get("/stats"))["uploads"].get<int64_t>();
  httplib::MultipartFormDataItems items = {{"files", noise_png(11), "scan-\xff\xfe.png", "image/png"},
                                           {"label", "glioma", "", ""}};
  auto upload = client().Post("/upload_training_data", admin_headers(), items);
  ASSERT_TRUE(upload);
  EXPECT_EQ(upload->status, 400) << upload->body;
  EXPECT_NO_THROW(parse_strict(upload->body));
  EXPECT_NE(upload->body.find("UTF-8"), std::string::npos) << upload->body;
  EXPECT_EQ(body_of(client().Get("/stats"))["uploads"].get<int64_t>(), uploads_before) << "the upload was stored";
}

// Before: parsing was iterative, but the error message dumped the value recursively: a 2 MB body nested a
// million deep overflowed the worker's stack and killed the process.
TEST_F(ResponseHygiene, DeepJsonIsRefusedNotDumped) {
  const int depth = 1'000'000;
  const std::string body = "{\"epochs\": " + std::string(depth, '[') + std::string(depth, ']') + "}";
  auto answer = client().Post("/retrain", admin_headers(), body, "application/json");
  ASSERT_TRUE(answer) << "no answer: the server died";
  EXPECT_EQ(answer->status, 400) << answer->body;
  EXPECT_NE(answer->body.find("nested deeper"), std::string::npos) << answer->body;
  // Brackets inside strings are text, not nesting.
  const std::string brackets_in_text = "{\"note\": \"" + std::string(100, '[') + "\", \"epochs\": 0}";
  auto quoted = client().Post("/retrain", admin_headers(), brackets_in_text, "application/json");
  ASSERT_TRUE(quoted);
  EXPECT_EQ(quoted->body.find("nested deeper"), std::string::npos) << quoted->body;
  auto health = client().Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

// Before: no Content-Security-Policy, X-Frame-Options or nosniff, while the UI keeps the admin token in
// localStorage.
TEST_F(ResponseHygiene, EveryAnswerCarriesTheSecurityHeaders) {
  for (const char* path : {"/", "/docs", "/ui/app.js", "/health", "/no-such-route"}) {
    auto answer = client().Get(path);
    ASSERT_TRUE(answer) << path;
    EXPECT_EQ(answer->get_header_value("X-Content-Type-Options"), "nosniff") << path;
    EXPECT_EQ(answer->get_header_value("X-Frame-Options"), "DENY") << path;
    const std::string policy = answer->get_header_value("Content-Security-Policy");
    EXPECT_NE(policy.find("script-src 'self'"), std::string::npos) << path;
    EXPECT_NE(policy.find("frame-ancestors 'none'"), std::string::npos) << path;
    EXPECT_EQ(policy.find("unsafe-inline"), std::string::npos) << path;
  }
  // The pages themselves run no inline script, so the policy does not break them.
  for (const char* page : {"/", "/docs"}) {
    const std::string html = client().Get(page)->body;
    EXPECT_EQ(html.find("<script>"), std::string::npos) << page;
    EXPECT_EQ(html.find(" style=\""), std::string::npos) << page;
  }
}

// The listening socket of `port` in this process (SO_ACCEPTCONN), or -1.
int listening_socket(int port) {
  for (const auto& entry : fs::directory_iterator("/proc/self/fd")) {
    const int fd = std::stoi(entry.path().filename().string());
    int accepting = 0;
    socklen_t length = sizeof(accepting);
    sockaddr_in address{};
    socklen_t address_length = sizeof(address);
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0 && accepting &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &address_length) == 0 &&
        address.sin_family == AF_INET && ntohs(address.sin_port) == port)
      return fd;
  }
  return -1;
}

bool health_answers(int port) {
  httplib::Client probe("127.0.0.1", port);
  probe.set_connection_timeout(1, 0);
  auto health = probe.Get("/health");
  return health && health->status == 200;
}

// Before: an accept() error other than EMFILE/EINTR/EAGAIN closed the listener, and the process went on (and
// exited 0) without one. shutdown() on a listening socket makes accept() fail with EINVAL, as such an error would.
TEST_F(ResponseHygiene, AFailedListenerIsBoundAgain) {
  const int listener = listening_socket(port_);
  ASSERT_GE(listener, 0);
  ASSERT_EQ(::shutdown(listener, SHUT_RDWR), 0);
  bool answered = false;
  for (int i = 0; i < 50 && !answered; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    answered = health_answers(port_);
  }
  EXPECT_TRUE(answered) << "the listener was not restored";
  EXPECT_FALSE(app_->listener_lost());
}

TEST_F(ResponseHygiene, AListenerThatCannotBeRestoredIsReportedLost) {
  restart([](ServerConfig& c) { c.listener_retry_ms = 500; });  // time for the squatter below to bind first
  const int listener = listening_socket(port_);
  ASSERT_GE(listener, 0);
  // Another socket takes the port as soon as the listener lets it go: binding it again fails.
  int squatter = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port_));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::shutdown(listener, SHUT_RDWR), 0);
  bool bound = false;
  for (int i = 0; i < 200 && !bound; ++i) {
    bound = ::bind(squatter, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    if (!bound) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(bound);
  ASSERT_EQ(::listen(squatter, 1), 0);
  for (int i = 0; i < 700 && !app_->listener_lost(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(app_->listener_lost());
  ::close(squatter);
}

}  // namespace
}  // namespace mriscan::server_test
