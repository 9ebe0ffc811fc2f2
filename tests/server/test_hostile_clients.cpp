// Hostile and broken clients against a real App on loopback (the hardening probes, each as a test that failed
// before the connection gate): slow clients, bodies without or above their limits, header floods, multi-range
// requests, methods that would have broken /metrics, a shed request whose body must not become a request, and
// Grad-CAM requests beyond their bound (503 at once instead of holding every worker).
#include <algorithm>
#include <future>
#include <memory>
#include <regex>
#include <sstream>

#include "tests/support/server_fixture.h"

namespace mriscan::server_test {
namespace {

class HostileClients : public ServerApi {
 protected:
  // Sends `request` on a fresh connection and returns everything until the server closes it.
  std::string exchange(const std::string& request, double timeout = 10.0) {
    int fd = open_stalled_connection(port_, request);
    EXPECT_GE(fd, 0);
    std::string answer = read_until_close(fd, timeout);
    ::close(fd);
    return answer;
  }
  double seconds_for_health() {
    const auto start = std::chrono::steady_clock::now();
    httplib::Client probe("127.0.0.1", port_);
    auto health = probe.Get("/health");
    EXPECT_TRUE(health && health->status == 200);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
};

TEST_F(HostileClients, SlowClientsGet408AndHealthStaysFast) {
  restart([](ServerConfig& c) { c.read_timeout_seconds = 2; });
  // More slow clients than workers: none of them holds a worker, they wait in the gate.
  std::vector<int> slow;
  for (int i = 0; i < 40; ++i) slow.push_back(open_stalled_connection(port_, "GET /health HTTP/1.1\r\nHost: x\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_LT(seconds_for_health(), 1.0);
  httplib::Client other("127.0.0.1", port_);
  auto models = other.Get("/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 200);
  for (int fd : slow) {
    const std::string answer = read_until_close(fd, 5.0);
    EXPECT_EQ(status_of(answer), 408) << answer;
    ::close(fd);
  }
}

// httplib's own listen queue is 5 connections: under load (both cores busy predicting, the accept thread not
// scheduled for a while) a burst of connects from nginx overflowed it and waited for SYN retries (504s at nginx).
// The kernel's view of the listening socket: `ss` shows the queue size as Send-Q.
TEST_F(HostileClients, ListenQueueHoldsABurstOfConnections) {
  FILE* pipe = ::popen(("ss -Hltn 'sport = :" + std::to_string(port_) + "'").c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char line[512] = {};
  const bool read = std::fgets(line, sizeof(line), pipe) != nullptr;
  ::pclose(pipe);
  ASSERT_TRUE(read) << "ss (iproute2) printed nothing for port " << port_;
  std::istringstream fields(line);
  std::string state;
  long queued = 0, queue_size = 0;
  fields >> state >> queued >> queue_size;
  EXPECT_EQ(state, "LISTEN");
  EXPECT_GE(queue_size, 128) << line;
}

TEST_F(HostileClients, SlowBodyGets408) {
  restart([](ServerConfig& c) { c.read_timeout_seconds = 1; });
  const auto start = std::chrono::steady_clock::now();
  const std::string answer = exchange(
      "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n0123456789");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(status_of(answer), 408) << answer;
  EXPECT_LT(seconds, 4.0);
}

TEST_F(HostileClients, BodiesNeedALengthWithinTheLimit) {
  // Chunked: refused before any of it is read.
  std::string answer = exchange("POST /nowhere HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "100000\r\n" + std::string(4096, 'x'));
  EXPECT_EQ(status_of(answer), 411) << answer;
  answer = exchange("POST /predict HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(status_of(answer), 411) << answer;
  // Over the limit (4 MB in the fixture): refused from the header, the body is never sent.
  answer = exchange("POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 300000000\r\n\r\n");
  EXPECT_EQ(status_of(answer), 413) << answer;
  EXPECT_NE(answer.find("\"error\""), std::string::npos);
  // Request smuggling: two different lengths.
  answer = exchange("POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx");
  EXPECT_EQ(status_of(answer), 400) << answer;
}

TEST_F(HostileClients, HeaderFloodsAre431) {
  std::string flood = "GET /health HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 200; ++i) flood += "X-Flood: 1\r\n";
  EXPECT_EQ(status_of(exchange(flood + "\r\n")), 431);
  EXPECT_EQ(status_of(exchange("GET /health HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n")), 431);
  // A flood that never ends is refused as soon as the limit is crossed, not when the client stops.
  int fd = open_stalled_connection(port_, flood);
  const std::string answer = read_until_close(fd, 5.0);
  ::close(fd);
  EXPECT_EQ(status_of(answer), 431) << answer;
}

TEST_F(HostileClients, MultiRangeIsRefusedSingleRangeServed) {
  EXPECT_EQ(status_of(exchange("GET /openapi.json HTTP/1.1\r\nHost: x\r\nRange: bytes=0-10,0-10,0-10\r\n"
                               "Connection: close\r\n\r\n")),
            416);
  const std::string one = exchange("GET /openapi.json HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n"
                                   "Connection: close\r\n\r\n");
  EXPECT_EQ(status_of(one), 206) << one.substr(0, 200);
  EXPECT_NE(one.find("Content-Length: 10\r\n"), std::string::npos);
}

TEST_F(HostileClients, MalformedMethodsLeaveMetricsParseable) {
  EXPECT_EQ(status_of(exchange("G\"E{T}\\ / HTTP/1.1\r\nHost: x\r\n\r\n")), 400);
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(status_of(exchange("BREW" + std::to_string(i) + " / HTTP/1.1\r\nHost: x\r\n\r\n")), 501);
  auto metrics = client().Get("/metrics");
  ASSERT_TRUE(metrics);
  // Every sample line follows the text exposition format; unknown methods share one label.
  const std::regex sample(R"(^[a-z_]+(\{([a-z_]+="([^"\\\n]|\\.)*",?)*\})? [-+0-9.eInf]+$)");
  std::istringstream lines(metrics->body);
  int series_with_other = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    EXPECT_TRUE(std::regex_match(line, sample)) << line;
    EXPECT_EQ(line.find("BREW"), std::string::npos) << line;
    series_with_other += line.find("method=\"OTHER\"") != std::string::npos;
  }
  EXPECT_EQ(series_with_other, 2);  // route "(rejected)", method OTHER: status 400 and status 501
}

TEST_F(HostileClients, ShedRequestsBodyIsNeverParsedAsARequest) {
  restart([](ServerConfig& c) {
    c.http_threads = 1;
    c.max_queued_requests = 0;
    c.read_timeout_seconds = 20;
  });
  // Holds the one worker: its body has started (the gate keeps a body that has not), then stalls.
  int held = open_stalled_connection(
      port_, "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n" + std::string(8192, 'x'));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // A keep-alive POST whose multipart body starts with its boundary line: shed, then the connection is closed.
  const std::string body = "--BOUNDARY\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n" +
                           noise_png(1) + "\r\n--BOUNDARY--\r\n";
  const std::string answer = exchange("POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                                      "boundary=BOUNDARY\r\nContent-Length: " +
                                      std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_EQ(status_of(answer), 503) << answer;
  EXPECT_EQ(answer.find("HTTP/1.1", 10), std::string::npos) << "a second response: the body was parsed";
  send_text(held, std::string(20000 - 8192, 'x'));
  read_until_close(held, 0.5);
  ::close(held);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto metrics = client().Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->body.find("BOUNDARY"), std::string::npos);
  EXPECT_EQ(metrics->body.find("route=\"(unrouted)\""), std::string::npos) << metrics->body;
}

TEST_F(HostileClients, KeepAliveAndPipeliningStillWork) {
  // httplib::Client keeps one connection: 20 requests on it, each answered.
  for (int i = 0; i < 20; ++i) {
    auto health = client().Get("/health");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
  }
  // Two requests in one write: the first is served, the second comes back through the gate.
  const std::string answers = exchange("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                                       "GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(status_of(answers), 200);
  EXPECT_NE(answers.find("\"ready\":true"), std::string::npos) << answers;
}

// Grad-CAM runs one request at a time, and a waiting request holds an HTTP worker: queued on a mutex, eight
// concurrent Grad-CAM requests held all eight workers and a plain /predict got no answer (measured before the fix).
// Now, with the test holding the running place and one allowed to wait, the rest are refused at once with 503 and
// Retry-After, and /predict and /health answer.
TEST_F(HostileClients, GradCamBeyondItsBoundIs503AndLeavesWorkersFree) {
  restart([](ServerConfig& c) { c.explain_max_waiting = 1; });
  const std::string scan = read_bytes(shared().scans[0]);
  auto running = std::make_unique<ExplainAdmission::Ticket>(app_->context().explanations);
  ASSERT_TRUE(running->admitted());
  running->wait_turn();
  std::vector<std::future<httplib::Result>> answers;
  for (int i = 0; i < 8; ++i)
    answers.push_back(std::async(std::launch::async, [&, i] {
      httplib::Client client("127.0.0.1", port_);
      client.set_read_timeout(60, 0);
      return client.Post(i % 2 ? "/explain" : "/predict?gradcam=1", one_file("file", scan));
    }));
  // Seven answers arrive without waiting for the running explanation; one request waits for its turn.
  auto is_ready = [](std::future<httplib::Result>& answer) {
    return answer.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  };
  const auto fired = std::chrono::steady_clock::now();
  while (std::count_if(answers.begin(), answers.end(), is_ready) < 7 &&
         std::chrono::steady_clock::now() - fired < std::chrono::seconds(5))
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_LT(seconds_since(fired), 4.5);  // before: none was answered while the explanation ran
  std::vector<httplib::Result> refused;
  for (auto& answer : answers)
    if (is_ready(answer)) refused.push_back(answer.get());
  ASSERT_EQ(refused.size(), 7u);
  for (const httplib::Result& result : refused) {
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 503) << result->body;
    EXPECT_EQ(result->get_header_value("Retry-After"), "1");
    const json body = body_of(result);
    EXPECT_EQ(body.value("status", 0), 503);
    EXPECT_NE(body.value("error", "").find("Grad-CAM"), std::string::npos) << result->body;
    EXPECT_EQ(body.value("request_id", ""), result->get_header_value("X-Request-Id"));
    EXPECT_FALSE(body.value("request_id", "").empty());
  }
  EXPECT_EQ(app_->context().explanations.admitted(), 2);  // the test's and the waiting one

  const auto start = std::chrono::steady_clock::now();
  auto predicted = client().Post("/predict", one_file("file", scan));
  ASSERT_TRUE(predicted);
  EXPECT_EQ(predicted->status, 200) << predicted->body;
  EXPECT_LT(seconds_since(start), 5.0);  // before: no worker was free for it
  EXPECT_LT(seconds_for_health(), 1.0);

  running.reset();  // the waiting request takes its turn
  for (auto& answer : answers)
    if (answer.valid()) {
      httplib::Result result = answer.get();
      ASSERT_TRUE(result);
      EXPECT_TRUE(result->status == 200 || result->status == 422) << result->status << " " << result->body;
    }
}

// However it is configured, Grad-CAM holds at most half of the workers: one running and the rest waiting.
TEST_F(HostileClients, GradCamWaitingIsLoweredToHalfTheWorkers) {
  restart([](ServerConfig& c) {
    c.http_threads = 4;
    c.explain_max_waiting = 5;
  });
  EXPECT_EQ(app_->context().explanations.max_waiting(), 1);
  restart([](ServerConfig& c) { c.http_threads = 1; });
  EXPECT_EQ(app_->context().explanations.max_waiting(), 0);
  restart([](ServerConfig&) {});
  EXPECT_EQ(app_->context().explanations.max_waiting(), 2);  // the default, with 8 workers
}

}  // namespace
}  // namespace mriscan::server_test
