// Life-cycle tests of `mriscan serve`: a full request queue answers 503 and recovers, stop() drains the request
// in progress, a restart after a crash finds interrupted jobs failed and the last good model active, and the
// real thing: the `mriscan serve` binary killed with SIGKILL in the middle of a retraining job, then restarted,
// then stopped with SIGTERM (exit 0).
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <regex>

#include "server/database.h"
#include "tests/support/server_fixture.h"

namespace mriscan::server_test {
namespace {

TEST(ServerOverload, FullQueueAnswers503AndRecovers) {
  if (shared().scans.empty()) GTEST_SKIP() << "shared dataset not found";
  fs::path state = shared().root / "state_overload";
  fs::remove_all(state);
  ServerConfig config = base_config(state, shared().model_a);
  config.http_threads = 1;
  config.max_queued_requests = 0;
  config.read_timeout_seconds = 5;
  App app(config);
  const int port = app.start();
  int stalled = open_stalled_connection(port, "GET /health HTTP/1.1\r\nHost: x\r\n");
  ASSERT_GE(stalled, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the only worker is now waiting on it
  httplib::Client client("127.0.0.1", port);
  auto busy = client.Get("/health");
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->status, 503);
  EXPECT_EQ(busy->get_header_value("Retry-After"), "1");
  EXPECT_NE(body_of(busy)["error"].get<std::string>().find("busy"), std::string::npos);
  // Finish the stalled request: the worker answers it and is free again.
  const std::string rest = "Connection: close\r\n\r\n";
  ::send(stalled, rest.data(), rest.size(), 0);
  char buffer[512];
  ssize_t n = ::recv(stalled, buffer, sizeof(buffer), 0);
  ::close(stalled);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buffer, n).rfind("HTTP/1.1 200", 0), 0u);
  // The worker frees itself just after closing a connection, so a request sent at that instant may still be shed:
  // within a moment requests succeed again.
  const auto get_once_free = [&](const char* path) -> httplib::Result {
    httplib::Result result = client.Get(path);
    for (int i = 0; i < 100 && !(result && result->status == 200); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      result = client.Get(path);
    }
    return result;
  };
  auto again = get_once_free("/health");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
  auto metrics = get_once_free("/metrics");
  ASSERT_TRUE(metrics);
  ASSERT_EQ(metrics->status, 200);
  std::smatch shed;
  ASSERT_TRUE(std::regex_search(metrics->body, shed, std::regex("mriscan_requests_shed_total (\\d+)")));
  EXPECT_GE(std::stoi(shed[1]), 1);
}

TEST(ServerShutdown, StopDrainsAcceptedRequests) {
  if (shared().scans.empty()) GTEST_SKIP() << "shared dataset not found";
  fs::path state = shared().root / "state_drain";
  fs::remove_all(state);
  App app(base_config(state, shared().model_a));
  const int port = app.start();
  int stalled = open_stalled_connection(port, "GET /health HTTP/1.1\r\nHost: x\r\n");
  ASSERT_GE(stalled, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::thread stopper([&] { app.stop(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // The server no longer accepts new connections, but the accepted request is still answered.
  httplib::Client late("127.0.0.1", port);
  late.set_connection_timeout(1, 0);
  EXPECT_FALSE(late.Get("/health"));
  const std::string rest = "Connection: close\r\n\r\n";
  ::send(stalled, rest.data(), rest.size(), 0);
  char buffer[512];
  ssize_t n = ::recv(stalled, buffer, sizeof(buffer), 0);
  ::close(stalled);
  stopper.join();
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buffer, n).rfind("HTTP/1.1 200", 0), 0u);
}

TEST(ServerRestart, InterruptedJobsFailAndTheLastGoodModelIsActive) {
  if (shared().scans.empty()) GTEST_SKIP() << "shared dataset not found";
  fs::path state = shared().root / "state_restart";
  fs::remove_all(state);
  {
    App app(base_config(state, shared().model_a));
    app.registry().register_file(shared().model_b, "test");
    app.registry().activate(2);
  }
  // What a crash can leave behind: a job row still 'running', an upload file without its row, a half-written
  // model file (rename never happened), and here even a corrupted active model file.
  {
    Database db((state / "mriscan.db").string());
    db.exec("INSERT INTO jobs (status, params, created_at, started_at)"
            " VALUES ('running', '{\"epochs\": 1}', 'x', 'x')");
  }
  std::ofstream(state / "uploads" / std::string(64, 'a')) << "orphan";
  std::ofstream(state / "uploads" / "partial.tmp") << "partial";
  std::ofstream(state / "models" / "v2.safetensors", std::ios::trunc) << "garbage";

  App app(base_config(state, shared().model_a));
  httplib::Client client("127.0.0.1", app.start());
  json job = body_of(client.Get("/retrain_status/1"));
  EXPECT_EQ(job["status"], "failed");
  EXPECT_NE(job["error"].get<std::string>().find("interrupted"), std::string::npos);
  json health = body_of(client.Get("/health"));
  EXPECT_EQ(health["model_version"], "v1") << app.startup_message();  // v2's file is corrupt: last good is v1
  EXPECT_EQ(body_of(client.Get("/models"))["active_version"], "v1");
  EXPECT_FALSE(fs::exists(state / "uploads" / std::string(64, 'a')));
  EXPECT_FALSE(fs::exists(state / "uploads" / "partial.tmp"));
}

// The real thing: `mriscan serve` as a child process, killed with SIGKILL while a retraining job is running.
TEST(ServerCrash, KillNineDuringRetrainingThenRestart) {
  if (shared().scans.empty()) GTEST_SKIP() << "shared dataset not found";
  const fs::path binary = fs::read_symlink("/proc/self/exe").parent_path() / "mriscan";
  if (!fs::exists(binary)) GTEST_SKIP() << binary << " not built";
  fs::path state = shared().root / "state_crash";
  fs::remove_all(state);
  // A free port: bind to 0, read it, release it.
  int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  ::getsockname(probe, reinterpret_cast<sockaddr*>(&address), &length);
  const int port = ntohs(address.sin_port);
  ::close(probe);

  auto spawn_server = [&] {
    std::vector<std::string> args = {binary.string(), "serve", "--model", shared().model_a, "--data",
                                     shared().data_dir, "--state-dir", state.string(), "--port",
                                     std::to_string(port), "--admin-token", kToken, "--quiet",
                                     "--retrain-batch-size", "4"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    EXPECT_EQ(posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ), 0);
    return pid;
  };
  auto wait_ready = [&](httplib::Client& client) {
    for (int i = 0; i < 300; ++i) {
      auto r = client.Get("/ready");
      if (r && r->status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  };

  pid_t pid = spawn_server();
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(60, 0);
  ASSERT_TRUE(wait_ready(client));
  auto submitted = client.Post("/retrain", admin_headers(), R"({"epochs": 50})", "application/json");
  ASSERT_TRUE(submitted);
  ASSERT_EQ(submitted->status, 202);
  for (int i = 0; i < 600; ++i) {
    json s = body_of(client.Get("/retrain_status/1"));
    if (s["status"] == "running" && s.contains("batch")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(pid, SIGKILL);
  int wstatus = 0;
  ::waitpid(pid, &wstatus, 0);
  ASSERT_TRUE(WIFSIGNALED(wstatus));

  pid = spawn_server();
  ASSERT_TRUE(wait_ready(client));
  json job = body_of(client.Get("/retrain_status/1"));
  EXPECT_EQ(job["status"], "failed");
  EXPECT_NE(job["error"].get<std::string>().find("interrupted"), std::string::npos);
  json models = body_of(client.Get("/models"));
  EXPECT_EQ(models["models"].size(), 1u);
  EXPECT_EQ(models["active_version"], "v1");
  auto prediction = client.Post("/predict", one_file("file", read_bytes(shared().scans[0])));
  ASSERT_TRUE(prediction);
  EXPECT_EQ(prediction->status, 200);
  // SIGTERM: graceful shutdown, exit status 0.
  ::kill(pid, SIGTERM);
  ::waitpid(pid, &wstatus, 0);
  EXPECT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);
}

}  // namespace
}  // namespace mriscan::server_test
