// Life-cycle tests of `mriscan serve`: a full request queue answers 503 (while /health still answers) and
// recovers, stop() serves the request in progress, a restart after a crash finds interrupted jobs failed and the last good model active, and the
// real thing: the `mriscan serve` binary killed with SIGKILL in the middle of a retraining job, then restarted,
// then stopped with SIGTERM (exit 0).
#include <regex>

#include "server/state/sqlite_database.h"
#include "tests/support/serve_process.h"

namespace mriscan::server_test {
namespace {

// A request whose body has started (the gate hands it over) but not finished holds a worker, for the body's 2 s
// grace plus 8 KiB at the minimum rate; kHeldRest finishes it.
const std::string kHeldPost = "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                              "Content-Length: 8202\r\nConnection: close\r\n\r\n" + std::string(8192, 'x');
const std::string kHeldRest = "0123456789";

TEST(ServerOverload, FullQueueAnswers503ProbesStillAnswerAndItRecovers) {
  if (shared().scans.empty()) GTEST_SKIP() << "shared dataset not found";
  fs::path state = shared().root / "state_overload";
  fs::remove_all(state);
  ServerConfig config = base_config(state, shared().model_a);
  config.http_threads = 1;
  config.max_queued_requests = 0;
  config.read_timeout_seconds = 20;
  config.body_min_bytes_per_second = 1024;  // kHeldPost holds the worker for 2 s + 8 s
  App app(config);
  const int port = app.start();
  int held = open_stalled_connection(port, kHeldPost);
  ASSERT_GE(held, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the only worker now waits for the body
  httplib::Client client("127.0.0.1", port);
  auto busy = client.Get("/metrics");
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->status, 503);
  EXPECT_EQ(busy->get_header_value("Retry-After"), "1");
  EXPECT_EQ(busy->get_header_value("Connection"), "close");
  EXPECT_NE(body_of(busy)["error"].get<std::string>().find("busy"), std::string::npos);
  // Liveness and readiness have a thread of their own.
  const auto start = std::chrono::steady_clock::now();
  auto health = client.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 1.0);
  // Finish the held request: the worker answers it and is free again.
  send_text(held, kHeldRest);
  const std::string answer = read_until_close(held);
  ::close(held);
  EXPECT_EQ(status_of(answer), 415) << answer;  // these bytes are neither JPEG nor PNG
  httplib::Result again = client.Get("/metrics");
  for (int i = 0; i < 100 && !(again && again->status == 200); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    again = client.Get("/metrics");
  }
  ASSERT_TRUE(again);
  ASSERT_EQ(again->status, 200);
  std::smatch shed;
  ASSERT_TRUE(std::regex_search(again->body, shed, std::regex("mriscan_requests_shed_total (\\d+)")));
  EXPECT_GE(std::stoi(shed[1]), 1);
}

TEST(ServerShutdown, StopServesTheRequestInProgress) {
  if (shared().scans.empty()) GTEST_SKIP() << "shared dataset not found";
  fs::path state = shared().root / "state_drain";
  fs::remove_all(state);
  ServerConfig config = base_config(state, shared().model_a);
  config.body_min_bytes_per_second = 1024;  // kHeldPost holds the worker for 2 s + 8 s
  App app(config);
  const int port = app.start();
  int held = open_stalled_connection(port, kHeldPost);
  ASSERT_GE(held, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::thread stopper([&] { app.stop(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // The server no longer accepts new connections, but the request in progress is still answered.
  httplib::Client late("127.0.0.1", port);
  late.set_connection_timeout(1, 0);
  EXPECT_FALSE(late.Get("/health"));
  send_text(held, kHeldRest);
  const std::string answer = read_until_close(held);
  ::close(held);
  stopper.join();
  EXPECT_EQ(status_of(answer), 415) << answer;
}

// A fresh state folder where v1 (model_a) and v2 (model_b) are registered and v2 is active.
fs::path state_with_v2_active(const std::string& name) {
  const fs::path state = shared().root / name;
  fs::remove_all(state);
  App app(base_config(state, shared().model_a));
  app.registry().register_file(shared().model_b, "test");
  app.registry().activate(2);
  return state;
}

TEST(ServerRestart, InterruptedJobsFailAndTheLastGoodModelIsActive) {
  if (shared().scans.empty()) GTEST_SKIP() << "shared dataset not found";
  const fs::path state = state_with_v2_active("state_restart");
  // What a crash can leave behind: a job row still 'running', an upload file without its row, a half-written
  // model file (rename never happened), and here even a corrupted active model file.
  {
    SqliteDatabase db((state / "mriscan.db").string());
    db.exec("INSERT INTO jobs (status, params, created_at, started_at)"
            " VALUES ('running', '{\"epochs\": 1}', 'x', 'x')");
  }
  std::ofstream(state / "uploads" / std::string(64, 'a')) << "orphan";
  std::ofstream(state / "uploads" / "partial.tmp") << "partial";
  std::ofstream(state / "uploads" / "in-flight.tmp") << "another replica is writing this";
  // Crash leftovers are old; a file younger than an hour may be another replica's upload in flight.
  for (const char* name : {"partial.tmp", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"})
    fs::last_write_time(state / "uploads" / name, fs::file_time_type::clock::now() - std::chrono::hours(2));
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
  EXPECT_TRUE(fs::exists(state / "uploads" / "in-flight.tmp"));
  // The failure may have been transient: v2 stays the recorded active version, and /models says what is served.
  EXPECT_NE(app.startup_message().find("in place of"), std::string::npos) << app.startup_message();
  json versions = body_of(client.Get("/models"))["models"];
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[1]["active"], true);
  EXPECT_EQ(versions[1]["serving"], false);
  EXPECT_EQ(versions[0]["serving"], true);
}

TEST(ServerRestart, ActiveModelThatFailedToLoadOnceIsServedAgainWhenItLoads) {
  if (shared().scans.empty()) GTEST_SKIP() << "shared dataset not found";
  const fs::path state = state_with_v2_active("state_transient");
  const fs::path v2 = state / "models" / "v2.safetensors";
  fs::rename(v2, state / "v2.away");  // e.g. a volume that is not mounted yet
  {
    App app(base_config(state, shared().model_a));
    EXPECT_EQ(app.registry().active()->name, "v1");
  }
  fs::rename(state / "v2.away", v2);
  App app(base_config(state, shared().model_a));
  EXPECT_EQ(app.registry().active()->name, "v2") << app.startup_message();
}

// The real thing: `mriscan serve` as a child process, killed with SIGKILL while a retraining job is running.
TEST(ServerCrash, KillNineDuringRetrainingThenRestart) {
  if (shared().scans.empty()) GTEST_SKIP() << "shared dataset not found";
  if (!fs::exists(ServeProcess::binary())) GTEST_SKIP() << ServeProcess::binary() << " not built";
  fs::path state = shared().root / "state_crash";
  fs::remove_all(state);
  ServeProcess server(state);
  server.start();
  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(60, 0);
  ASSERT_TRUE(server.wait_ready());
  auto submitted = client.Post("/retrain", admin_headers(), R"({"epochs": 50})", "application/json");
  ASSERT_TRUE(submitted);
  ASSERT_EQ(submitted->status, 202);
  for (int i = 0; i < 600; ++i) {
    json s = body_of(client.Get("/retrain_status/1"));
    if (s["status"] == "running" && s.contains("batch")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(WIFSIGNALED(server.kill(SIGKILL)));

  // The job's lease (job_queue.h: 10 s without a heartbeat) expires, then the restarted server records it.
  server.start();
  ASSERT_TRUE(server.wait_ready());
  json job;
  for (int i = 0; i < 300; ++i) {
    job = body_of(client.Get("/retrain_status/1"));
    if (job["status"] != "running") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(job["status"], "failed");
  EXPECT_NE(job["error"].get<std::string>().find("interrupted"), std::string::npos);
  json models = body_of(client.Get("/models"));
  EXPECT_EQ(models["models"].size(), 1u);
  EXPECT_EQ(models["active_version"], "v1");
  auto prediction = client.Post("/predict", one_file("file", read_bytes(shared().scans[0])));
  ASSERT_TRUE(prediction);
  EXPECT_EQ(prediction->status, 200);
  // SIGTERM: graceful shutdown, exit status 0.
  const int wstatus = server.kill(SIGTERM);
  EXPECT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);
}

}  // namespace
}  // namespace mriscan::server_test
