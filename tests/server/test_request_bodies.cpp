// Request bodies a hostile client controls, against a real App on loopback: compressed bodies (refused from the
// head, before a byte of them is read or inflated), declared bodies that never arrive (they wait in the gate, not
// in a worker), bodies that trickle below the minimum rate (408), and the workers they hold made visible to
// /health and /ready. Each case failed before the fix it tests.
#include "tests/support/nginx_process.h"
#include "tests/support/server_fixture.h"

namespace mriscan::server_test {
namespace {

using Clock = std::chrono::steady_clock;

class RequestBodies : public ServerApi {};

// Before: httplib inflated a gzip body into memory during routing (a 1 MB body became 1 GB) and only then
// answered 415. Now the head alone is refused: the 1 MB the client declared is never read.
TEST_F(RequestBodies, CompressedBodiesAre415FromTheHeadAlone) {
  for (const char* coding : {"gzip", "deflate", "br", "GZip", "identity, gzip"}) {
    const auto start = Clock::now();
    int fd = open_stalled_connection(port_, std::string("POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png"
                                                        "\r\nContent-Encoding: ") +
                                                coding + "\r\nContent-Length: 1000000\r\n\r\n");
    ASSERT_GE(fd, 0);
    const std::string answer = read_until_close(fd, 5.0);
    ::close(fd);
    EXPECT_EQ(status_of(answer), 415) << coding << ": " << answer.substr(0, 300);
    EXPECT_LT(seconds_since(start), 2.5) << coding;  // the lingering close, not a wait for the body
    EXPECT_NE(answer.find("Content-Encoding"), std::string::npos) << answer;
  }
  // identity is no coding at all: served as usual.
  auto plain = client().Post("/predict", {{"Content-Encoding", "identity"}}, noise_png(3), "image/png");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 200) << plain->body;
}

// deploy/nginx.conf refuses the same requests itself, before reading their bodies, so they never reach a replica.
TEST_F(RequestBodies, NginxRefusesCompressedBodiesBeforeTheReplica) {
  if (!fs::exists(kNginx)) GTEST_SKIP() << kNginx << " not installed (scripts/install_deps.sh installs it)";
  NginxProcess nginx(state_.parent_path() / "nginx_request_bodies", {port_});
  int fd = open_stalled_connection(nginx.port(), "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n"
                                                 "Content-Type: image/png\r\nContent-Length: 1000000\r\n\r\n");
  const std::string answer = read_until_close(fd, 2.0);  // nginx keeps the connection to discard the body
  ::close(fd);
  EXPECT_EQ(status_of(answer), 415) << answer.substr(0, 300);
  EXPECT_EQ(answer.find("X-Replica"), std::string::npos) << "a replica answered: " << answer.substr(0, 300);
  httplib::Client through("127.0.0.1", nginx.port());
  auto plain = through.Post("/predict", noise_png(4), "image/png");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 200) << plain->body;
}

// Before: ten clients that declared a body and sent nothing held eight workers for read_timeout + length/64 KiB/s
// (minutes); an eleventh client's prediction got no answer. Now they wait in the gate and get 408 at the head's
// deadline, and the prediction is answered at once.
TEST_F(RequestBodies, DeclaredBodiesThatNeverArriveHoldNoWorker) {
  restart([](ServerConfig& c) { c.read_timeout_seconds = 3; });
  std::vector<int> silent;
  for (int i = 0; i < 10; ++i)
    silent.push_back(open_stalled_connection(
        port_, "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 3000000\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto start = Clock::now();
  auto answered = predict(noise_png(5));
  ASSERT_TRUE(answered);
  EXPECT_EQ(answered->status, 200);
  EXPECT_LT(seconds_since(start), 5.0);  // before: no answer until the silent bodies' deadlines, 900 s
  json workers = json::object();  // the worker that answered may not have counted itself free yet
  for (int i = 0; i < 20 && workers.value("busy", -1) != 0; ++i) {
    workers = body_of(client().Get("/health"))["workers"];
    if (workers.value("busy", -1) != 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(workers.value("busy", -1), 0) << workers;
  for (int fd : silent) {
    const std::string answer = read_until_close(fd, 6.0);
    EXPECT_EQ(status_of(answer), 408) << answer;
    EXPECT_NE(answer.find("not started"), std::string::npos) << answer;
    ::close(fd);
  }
}

// A client that sends `Expect: 100-continue` waits for the server before sending its body (curl does, for large
// uploads): that head goes to a worker at once, whose httplib answers 100 Continue.
TEST_F(RequestBodies, AClientExpecting100ContinueGetsIt) {
  const std::string body = "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n" +
                           noise_png(6) + "\r\n--B--\r\n";
  int fd = open_stalled_connection(port_, "POST /predict HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                                          "Content-Type: multipart/form-data; boundary=B\r\nConnection: close\r\n"
                                          "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n");
  ASSERT_GE(fd, 0);
  const std::string interim = read_until_close(fd, 1.0);
  EXPECT_EQ(interim.rfind("HTTP/1.1 100 Continue", 0), 0u) << interim;
  send_text(fd, body);
  const std::string answer = read_until_close(fd, 10.0);
  ::close(fd);
  EXPECT_EQ(status_of(answer), 200) << answer.substr(0, 300);
}

// Before: a body's deadline was read_timeout + length at 64 KiB/s in total, so a client could send the first
// bytes and then one byte a second for as long as that allowed. Now the average rate counts from the first byte.
TEST_F(RequestBodies, ATricklingBodyGets408AtTheMinimumRate) {
  const auto start = Clock::now();
  int fd = open_stalled_connection(port_, "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                                          "Content-Length: 1000000\r\n\r\n" + std::string(8192, 'x'));
  ASSERT_GE(fd, 0);
  std::string answer;
  for (int i = 0; i < 40 && answer.empty(); ++i) {  // 100 bytes per 200 ms: 500 B/s, far below 64 KiB/s
    send_text(fd, std::string(100, 'x'));
    answer = read_until_close(fd, 0.2);
  }
  if (answer.empty()) answer = read_until_close(fd, 2.0);
  ::close(fd);
  EXPECT_EQ(status_of(answer), 408) << answer;
  EXPECT_NE(answer.find("KiB/s"), std::string::npos) << answer;
  EXPECT_LT(seconds_since(start), 8.0);  // grace 2 s + 8 KiB at 64 KiB/s; before: 10 s + 15 s
}

// Before: with every worker held, /health and /ready kept answering 200. Now /health counts the held workers and
// /ready turns 503 once all have been busy for longer than ready_busy_seconds, and 200 again when one is free.
TEST_F(RequestBodies, ReadyTurns503WhileEveryWorkerIsHeld) {
  restart([](ServerConfig& c) {
    c.http_threads = 2;
    c.ready_busy_seconds = 1;
    c.body_min_bytes_per_second = 1024;  // 8 KiB sent holds a worker for the 2 s grace + 8 s
  });
  const std::string head = "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nConnection: close\r\n"
                           "Content-Length: 20000\r\n\r\n";
  std::vector<int> holders;
  for (int i = 0; i < 2; ++i) holders.push_back(open_stalled_connection(port_, head + std::string(8192, 'x')));
  std::this_thread::sleep_for(std::chrono::milliseconds(1600));
  const json health = body_of(client().Get("/health"));
  EXPECT_EQ(health["workers"]["total"], 2) << health;
  EXPECT_EQ(health["workers"]["busy"], 2) << health;
  EXPECT_GT(health["workers"]["all_busy_seconds"].get<double>(), 1.0) << health;
  httplib::Client probe("127.0.0.1", port_);
  auto ready = probe.Get("/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503) << ready->body;
  EXPECT_NE(ready->body.find("busy"), std::string::npos);
  for (int fd : holders) {
    send_text(fd, std::string(20000 - 8192, 'x'));  // the rest: not a PNG, answered 4xx, the worker is free
    EXPECT_GE(status_of(read_until_close(fd, 5.0)), 400);
    ::close(fd);
  }
  ready = probe.Get("/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;
}

}  // namespace
}  // namespace mriscan::server_test
