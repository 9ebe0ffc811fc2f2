// Two `mriscan serve` processes behind a real nginx running deploy/nginx.conf, on each backend: one state directory
// (SQLite, as deploy/compose.yaml runs them on one host) or nothing shared but PostgreSQL (tests/support/
// replica_fixture.h). They import the initial model once, name themselves in /health and X-Replica,
// claim each retraining job exactly once with unique version numbers, serve what either activates within the
// follow interval, show progress and take cancels for each other's jobs, leave a live replica's job alone at
// start-up, fail a dead replica's job once its lease expires (not before) -- or cancel it, if a cancel was
// accepted before it died -- keep an operator's activation and rollback over a retrain's, and on SIGTERM finish
// the request in flight and requeue the running job for the other replica.
// What it is not: a load test (deploy/loadtest.sh) or a test of one process's recovery (test_server_lifecycle).
#include <sys/socket.h>

#include <set>
#include <thread>

#include "server/model_registry.h"
#include "tests/support/replica_fixture.h"

namespace mriscan::server_test {
namespace {

using Clock = std::chrono::steady_clock;

class Replicas : public ReplicaFixture, public ::testing::WithParamInterface<Backend> {
 protected:
  Backend backend() const override { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Backends, Replicas, ::testing::Values(Backend::kSqlite, Backend::kPostgres), backend_name);

TEST_P(Replicas, ImportOnceAndNameThemselvesInHealthAndEveryResponse) {
  httplib::Client client = through_nginx();
  EXPECT_EQ(body_of(client.Get("/models"))["models"].size(), 1u) << "both replicas imported the initial model";
  std::set<std::string> seen;
  for (int i = 0; i < 40; ++i) {
    auto r = client.Get("/health");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
    const std::string replica = r->get_header_value("X-Replica");
    EXPECT_EQ(body_of(r)["replica"], replica);  // /health and the header agree
    seen.insert(replica);
  }
  EXPECT_EQ(seen, (std::set<std::string>{"a", "b"})) << "nginx should spread requests over both replicas";
  // Errors carry it too: a routed 404, and an answer of the connection gate itself (an unknown method, 501).
  httplib::Client a = direct(0);
  auto missing = a.Get("/no-such-route");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->get_header_value("X-Replica"), "a");
  const int fd = open_stalled_connection(servers_[1]->port(), "BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string refused = read_until_close(fd);
  ::close(fd);
  EXPECT_EQ(status_of(refused), 501);
  EXPECT_NE(refused.find("X-Replica: b\r\n"), std::string::npos) << refused;
}

TEST_P(Replicas, JobsRunOnceWithUniqueVersionsAndEveryReplicaServesTheResult) {
  // Four jobs submitted at once through nginx; both workers compete for them.
  std::vector<int64_t> jobs(4);
  std::vector<std::thread> submitters;
  for (int i = 0; i < 4; ++i)
    submitters.emplace_back([&, i] {
      httplib::Client client = through_nginx();
      jobs[i] = submit(client, 1);
    });
  for (auto& t : submitters) t.join();
  httplib::Client client = through_nginx();
  std::set<std::string> versions;
  for (int64_t job : jobs) {
    json finished = wait_for_job(client, job, 300);
    ASSERT_EQ(finished["status"], "completed") << finished.dump();
    versions.insert(finished["result"]["model_version"].get<std::string>());
    EXPECT_NE(owner_of(job), -1);
  }
  // Exactly once: every job registered one version of its own, and there is no other.
  EXPECT_EQ(versions, (std::set<std::string>{"v2", "v3", "v4", "v5"}));
  json models = body_of(client.Get("/models"));
  ASSERT_EQ(models["models"].size(), 5u) << models.dump();
  auto db = state_database();
  for (int n = 2; n <= 5; ++n) {  // each version's file: on the shared volume, or in the database
    const std::string file = "v" + std::to_string(n) + ".safetensors";
    if (!on_postgres()) {
      EXPECT_TRUE(fs::exists(state_ / "models" / file)) << file;
    } else {
      EXPECT_FALSE(db->query("SELECT part FROM blobs WHERE key = ?", {"models/" + file}).empty()) << file;
    }
  }
  // Whichever activation committed last (a job activates only over the version it started from) is the
  // recorded one, and both replicas serve it within the follow interval.
  const std::string recorded =
      "v" + std::to_string(db->query("SELECT number FROM models WHERE active = 1").at(0).integer("number"));
  EXPECT_NE(recorded, "v1");
  const auto start = Clock::now();
  for (int i : {0, 1}) {
    httplib::Client replica = direct(i);
    while (body_of(replica.Get("/health"))["model_version"] != recorded && seconds_since(start) < 5)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(body_of(replica.Get("/health"))["model_version"], recorded) << "replica " << i << ":\n"
                                                                          << servers_[i]->log();
    EXPECT_EQ(body_of(replica.Get("/models"))["active_version"], recorded);
  }
  EXPECT_LT(seconds_since(start), 2.0);
}

TEST_P(Replicas, AnActivationOnOneReplicaIsServedByTheOtherWithinTwoSeconds) {
  {  // v2 registered by a third process (this test), as any replica's retrain would
    auto db = state_database();
    ModelRegistry registry(*db, (state_ / "test-process-models").string());
    ASSERT_EQ(registry.register_file(shared().model_b, "test").number, 2);
  }
  for (auto [from, to, version] : {std::tuple{0, 1, "v2"}, std::tuple{1, 0, "v1"}}) {
    httplib::Client activating = direct(from), following = direct(to);
    auto r = activating.Post(std::string("/models/") + version + "/activate", admin_headers(), "", "text/plain");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const auto start = Clock::now();
    while (body_of(following.Get("/health"))["model_version"] != version && seconds_since(start) < 5)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const double followed = seconds_since(start);
    EXPECT_LT(followed, 2.0) << version << " reached replica " << to << " after " << followed << " s";
    json models = body_of(following.Get("/models"));
    EXPECT_EQ(models["active_version"], version);
    for (const json& m : models["models"]) EXPECT_EQ(m["serving"], m["version"] == version) << m.dump();
    auto prediction = following.Post("/predict", one_file("file", read_bytes(shared().scans[0])));
    ASSERT_TRUE(prediction);
    EXPECT_EQ(prediction->get_header_value("X-Model-Version"), version);
  }
}

// A version an operator activates while a job runs, and a rollback after the job, stand: the job's candidate is
// registered but not activated over them, and activated by hand on one host it is served by the other.
TEST_P(Replicas, AnOperatorsChoicesStandAgainstARetrainFinishedOnTheOtherHost) {
  {  // v2 registered by a third process
    auto db = state_database();
    ModelRegistry registry(*db, (state_ / "test-process-models").string());
    ASSERT_EQ(registry.register_file(shared().model_b, "test").number, 2);
  }
  httplib::Client a = direct(0);
  const int64_t job = submit(a, 5);
  const int owner = wait_running(a, job);
  ASSERT_NE(owner, -1);
  httplib::Client owning = direct(owner), other = direct(1 - owner);
  auto activate = [](httplib::Client& client, const std::string& version) {
    auto r = client.Post("/models/" + version + "/activate", admin_headers(), "", "text/plain");
    return r ? r->status : 0;
  };
  auto served_everywhere = [&](const std::string& version) {
    const auto start = Clock::now();
    for (int i : {0, 1}) {
      httplib::Client replica = direct(i);
      while (body_of(replica.Get("/health"))["model_version"] != version && seconds_since(start) < 5)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (body_of(replica.Get("/health"))["model_version"] != version) return false;
    }
    return true;
  };
  ASSERT_EQ(activate(other, "v2"), 200);  // while the job, based on v1, runs on the owner
  json finished = wait_for_job(other, job, 300);
  ASSERT_EQ(finished["status"], "completed") << finished.dump();
  EXPECT_EQ(finished["result"]["activated"], false) << finished.dump();
  EXPECT_TRUE(served_everywhere("v2"));
  const std::string candidate = finished["result"]["model_version"];
  auto card = other.Get("/models/" + candidate + "/card");  // the file, read on the host that did not train it
  ASSERT_TRUE(card);
  EXPECT_EQ(card->status, 200) << card->body;
  ASSERT_EQ(activate(owning, candidate), 200);
  EXPECT_TRUE(served_everywhere(candidate));
  ASSERT_EQ(activate(other, "v1"), 200);  // the rollback
  EXPECT_TRUE(served_everywhere("v1"));
  std::this_thread::sleep_for(std::chrono::seconds(2));  // several follow intervals: nothing undoes it
  EXPECT_TRUE(served_everywhere("v1"));
  EXPECT_EQ(body_of(owning.Get("/models"))["active_version"], "v1");
}

TEST_P(Replicas, ProgressAndCancelWorkFromTheOtherReplicaAndItsRestartLeavesTheJobAlone) {
  httplib::Client a = direct(0);
  const int64_t job = submit(a, 50);
  const int owner = wait_running(a, job);
  ASSERT_NE(owner, -1);
  const int other = 1 - owner;
  httplib::Client other_client = direct(other);
  // Live progress reaches the other replica through the row (the owner's heartbeat writes it every second).
  json first;
  for (int i = 0; i < 50; ++i) {
    first = body_of(other_client.Get("/retrain_status/" + std::to_string(job)));
    if (first["progress"].is_object() && first["progress"].contains("batch")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(first["progress"].contains("batch")) << first.dump();
  // The other replica restarts: its start-up recovery must not touch a live replica's running job.
  ASSERT_EQ(WEXITSTATUS(servers_[other]->kill(SIGTERM)), 0);
  servers_[other]->start();
  ASSERT_TRUE(servers_[other]->wait_ready());
  json after_restart = body_of(other_client.Get("/retrain_status/" + std::to_string(job)));
  EXPECT_EQ(after_restart["status"], "running") << after_restart.dump();
  EXPECT_EQ(owner_of(job), owner);
  // Cancelled from the replica that does not run it.
  auto cancel = other_client.Post("/retrain/" + std::to_string(job) + "/cancel", admin_headers(), "", "text/plain");
  ASSERT_TRUE(cancel);
  EXPECT_EQ(cancel->status, 202) << cancel->body;
  json ended = wait_for_job(other_client, job, 30);
  EXPECT_EQ(ended["status"], "cancelled") << ended.dump();
}

TEST_P(Replicas, AKilledReplicasJobFailsWhenItsLeaseExpiresAndNginxRoutesAroundIt) {
  httplib::Client a = direct(0);
  const int64_t job = submit(a, 50);
  const int owner = wait_running(a, job);
  ASSERT_NE(owner, -1);
  ASSERT_TRUE(WIFSIGNALED(servers_[owner]->kill(SIGKILL)));
  const auto killed = Clock::now();
  // Through nginx, GETs keep working: a connection refused by the dead replica is retried on the live one.
  httplib::Client client = through_nginx();
  for (int i = 0; i < 20; ++i) {
    auto r = client.Get("/health");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->get_header_value("X-Replica"), owner == 0 ? "b" : "a");
  }
  httplib::Client survivor = direct(1 - owner);
  json status;
  while (seconds_since(killed) < 30) {
    status = body_of(survivor.Get("/retrain_status/" + std::to_string(job)));
    if (status["status"] != "running") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const double after = seconds_since(killed);
  EXPECT_EQ(status["status"], "failed") << status.dump();
  EXPECT_NE(status["error"].dump().find(owner == 0 ? "(a/" : "(b/"), std::string::npos) << status.dump();
  // The lease is 10 s, renewed every second: not failed before ~9 s, and found within a poll of the expiry.
  EXPECT_GE(after, 8.0);
  EXPECT_LE(after, 15.0);
}

TEST_P(Replicas, SigtermFinishesTheRequestInFlightAndRequeuesTheJobForTheOtherReplica) {
  httplib::Client a = direct(0);
  const int64_t job = submit(a, 50);
  const int owner = wait_running(a, job);
  ASSERT_NE(owner, -1);
  ServeProcess& stopping = *servers_[owner];
  // A prediction in flight: its head and half its body have arrived when SIGTERM does.
  const std::string boundary = "mriscanboundary";
  const std::string body = "--" + boundary +
                           "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"s.jpg\"\r\n"
                           "Content-Type: image/jpeg\r\n\r\n" +
                           read_bytes(shared().scans[0]) + "\r\n--" + boundary + "--\r\n";
  const std::string head =
      "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=" + boundary +
      "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  const int fd = open_stalled_connection(stopping.port(), head + body.substr(0, body.size() / 2));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(stopping.pid(), SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  send_text(fd, body.substr(body.size() / 2));
  const std::string response = read_until_close(fd, 20);
  ::close(fd);
  EXPECT_EQ(status_of(response), 200) << response.substr(0, 300);
  EXPECT_NE(response.find("\"predicted_class\""), std::string::npos);
  // It exits 0, having stopped the job at a batch boundary and put it back in the queue ...
  const int wstatus = stopping.kill(0);  // already signalled: just wait
  EXPECT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);
  EXPECT_NE(stopping.log().find("requeued"), std::string::npos) << stopping.log();
  // ... where the other replica claims it within its poll interval (2 s).
  httplib::Client other = direct(1 - owner);
  int new_owner = -1;
  for (int i = 0; i < 100 && new_owner != 1 - owner; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    new_owner = owner_of(job);
  }
  EXPECT_EQ(new_owner, 1 - owner);
  json requeued = body_of(other.Get("/retrain_status/" + std::to_string(job)));
  EXPECT_EQ(requeued["status"], "running");
  EXPECT_NE(requeued["error"].dump().find("requeued: its server"), std::string::npos) << requeued.dump();
  auto cancel = other.Post("/retrain/" + std::to_string(job) + "/cancel", admin_headers(), "", "text/plain");
  ASSERT_TRUE(cancel);
  EXPECT_EQ(wait_for_job(other, job, 30)["status"], "cancelled");
}

// A cancel accepted (202) just before the owner is stopped must end the job cancelled, not requeued.
TEST_P(Replicas, ACancelAcceptedBeforeShutdownWinsOverTheRequeue) {
  httplib::Client a = direct(0);
  const int64_t job = submit(a, 50);
  const int owner = wait_running(a, job);
  ASSERT_NE(owner, -1);
  httplib::Client other = direct(1 - owner);
  auto cancel = other.Post("/retrain/" + std::to_string(job) + "/cancel", admin_headers(), "", "text/plain");
  ASSERT_TRUE(cancel);
  ASSERT_EQ(cancel->status, 202) << cancel->body;
  const int wstatus = servers_[owner]->kill(SIGTERM);  // at once: the owner's heartbeat may not have seen it
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);
  json ended = wait_for_job(other, job, 10);
  EXPECT_EQ(ended["status"], "cancelled") << ended.dump();
  std::this_thread::sleep_for(std::chrono::seconds(3));  // longer than the other replica's poll
  EXPECT_EQ(body_of(other.Get("/retrain_status/" + std::to_string(job)))["status"], "cancelled");
}

// A cancel accepted (202) for a job whose owner then dies before acting on it: the replica that records the
// expired lease ends the job cancelled, as the 202 promised (not failed), and removes its run folder.
TEST_P(Replicas, ACancelAcceptedBeforeTheOwnerDiesEndsTheJobCancelled) {
  httplib::Client a = direct(0);
  const int64_t job = submit(a, 50);
  const int owner = wait_running(a, job);
  ASSERT_NE(owner, -1);
  ASSERT_TRUE(fs::exists(run_folder(owner, job)));
  // Stopped first, so that its heartbeat cannot see the cancel and end the job itself.
  ASSERT_TRUE(pause_outside_a_write(owner)) << "the owner held the database's write lock at every attempt";
  httplib::Client other = direct(1 - owner);
  auto cancel = other.Post("/retrain/" + std::to_string(job) + "/cancel", admin_headers(), "", "text/plain");
  ASSERT_TRUE(cancel);
  ASSERT_EQ(cancel->status, 202) << cancel->body;
  ASSERT_TRUE(WIFSIGNALED(servers_[owner]->kill(SIGKILL)));
  json ended = wait_for_job(other, job, 30);
  EXPECT_EQ(ended["status"], "cancelled") << ended.dump();
  const fs::path folder = run_folder(owner, job);
  if (on_postgres()) {  // the folder is on the dead host (docs/replicas.md): its replica's next start removes it
    EXPECT_TRUE(fs::exists(folder));
    servers_[owner]->start();
    ASSERT_TRUE(servers_[owner]->wait_ready()) << servers_[owner]->log();
  }
  for (int i = 0; i < 50 && fs::exists(folder); ++i)  // removed right after the recording transaction, or at start
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(fs::exists(folder));
}

// An owner stopped (SIGSTOP) past its lease finds, when it continues, that another replica recorded its job:
// it abandons the job and changes nothing about it.
TEST_P(Replicas, AnOwnerPausedPastItsLeaseChangesNothingWhenItResumes) {
  httplib::Client a = direct(0);
  const int64_t job = submit(a, 50);
  const int owner = wait_running(a, job);
  ASSERT_NE(owner, -1);
  ASSERT_TRUE(pause_outside_a_write(owner)) << "the owner held the database's write lock at every attempt";
  httplib::Client other = direct(1 - owner);
  json status = json::object();
  for (int i = 0; i < 300 && status.value("status", "running") == "running"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    status = body_of(other.Get("/retrain_status/" + std::to_string(job)));
  }
  ::kill(servers_[owner]->pid(), SIGCONT);
  ASSERT_EQ(status["status"], "failed") << status.dump();
  std::this_thread::sleep_for(std::chrono::seconds(4));  // its heartbeat runs, its trainer stops at a batch
  json after = body_of(other.Get("/retrain_status/" + std::to_string(job)));
  EXPECT_EQ(after["status"], "failed") << after.dump();
  EXPECT_EQ(after["error"], status["error"]);
  EXPECT_NE(servers_[owner]->log().find("no longer ours"), std::string::npos) << servers_[owner]->log();
  httplib::Client resumed = direct(owner);
  auto health = resumed.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

// Without a token from the environment, replicas starting together must agree on the one in the state directory.
TEST(ReplicaToken, ReplicasStartingTogetherShareOneGeneratedToken) {
  if (shared().scans.empty()) GTEST_SKIP() << "shared dataset not found";
  if (!fs::exists(ServeProcess::binary())) GTEST_SKIP() << ServeProcess::binary() << " not built";
  const fs::path state = shared().root / "replicas_token";
  fs::remove_all(state);
  std::vector<std::unique_ptr<ServeProcess>> servers;
  for (const char* replica : {"a", "b", "c"})
    servers.push_back(
        std::make_unique<ServeProcess>(state, std::vector<std::string>{"--replica", replica}, false, replica));
  for (auto& server : servers) server->start();
  for (auto& server : servers) ASSERT_TRUE(server->wait_ready()) << server->log();
  const std::string token = read_bytes((state / "admin_token").string());
  ASSERT_EQ(token.size(), 32u);
  for (auto& server : servers) {
    httplib::Client client("127.0.0.1", server->port());
    auto r = client.Post("/models/v1/activate", {{"Authorization", "Bearer " + token}}, "", "text/plain");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << "replica on port " << server->port() << ": " << r->body;
  }
  for (const auto& entry : fs::directory_iterator(state))
    EXPECT_EQ(entry.path().filename().string().find("admin_token.tmp"), std::string::npos) << entry.path();
}

}  // namespace
}  // namespace mriscan::server_test
