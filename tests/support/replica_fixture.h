// Two `mriscan serve` replicas "a" and "b", started together, behind a real nginx running deploy/nginx.conf, on
// either backend: SQLite (one state directory, as deploy/compose.yaml runs them on one host) or PostgreSQL (a
// state directory each and nothing shared but a database of a cluster the test binary starts itself, as on
// several hosts). The helpers read the state the same way on both (state_database()).
// What it is not: a load test (deploy/loadtest.sh).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "server/state/postgres_database.h"
#include "server/state/sqlite_database.h"
#include "tests/support/nginx_process.h"
#include "tests/support/postgres_cluster.h"
#include "tests/support/serve_process.h"

namespace mriscan::server_test {

enum class Backend { kSqlite, kPostgres };

inline std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "Sqlite" : "Postgres";
}
inline void PrintTo(Backend backend, std::ostream* out) {
  *out << (backend == Backend::kSqlite ? "SQLite" : "PostgreSQL");
}

// One cluster per test binary, started on first use (each test gets a database of its own).
inline PostgresCluster& postgres_cluster() {
  static PostgresCluster cluster;
  return cluster;
}

class ReplicaFixture : public ::testing::Test {
 protected:
  virtual Backend backend() const = 0;
  bool on_postgres() const { return backend() == Backend::kPostgres; }

  void SetUp() override {
    if (shared().scans.empty()) GTEST_SKIP() << "shared dataset not found";
    if (!fs::exists(ServeProcess::binary())) GTEST_SKIP() << ServeProcess::binary() << " not built";
    if (!fs::exists(kNginx)) GTEST_SKIP() << kNginx << " not installed (scripts/install_deps.sh installs it)";
    if (on_postgres() && !PostgresCluster::bin_dir())
      GTEST_SKIP() << "PostgreSQL's server is not installed (scripts/install_deps.sh installs it)";
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';  // "Name/Postgres"
    state_ = shared().root / ("replicas_" + name);
    fs::remove_all(state_);
    fs::create_directories(state_);
    if (on_postgres()) url_ = postgres_cluster().create_database("t" + std::to_string(++database_count_) + "_" +
                                                                 std::to_string(::getpid()));
    for (const char* replica : {"a", "b"}) {
      std::vector<std::string> extra = {"--replica", replica, "--activation-rule", "always"};
      if (on_postgres()) extra.insert(extra.end(), {"--database", url_});
      servers_.push_back(std::make_unique<ServeProcess>(state_of(replica), extra, true, replica));
    }
    for (auto& server : servers_) server->start();  // together: both see an empty registry
    for (auto& server : servers_) ASSERT_TRUE(server->wait_ready()) << server->log();
    nginx_ = std::make_unique<NginxProcess>(shared().root / ("nginx_" + name),
                                            std::vector<int>{servers_[0]->port(), servers_[1]->port()});
  }

  // A replica's state directory: the shared one (SQLite) or its own (PostgreSQL).
  fs::path state_of(const std::string& replica) const { return on_postgres() ? state_ / replica : state_; }
  fs::path run_folder(int index, int64_t job) const {
    return state_of(index == 0 ? "a" : "b") / "runs" / ("job-" + std::to_string(job));
  }
  // A connection of the test's own to the replicas' state; `busy_timeout_ms` as small as 1 ms.
  std::unique_ptr<Database> state_database(int busy_timeout_ms = 5000) const {
    if (!on_postgres()) return std::make_unique<SqliteDatabase>((state_ / "mriscan.db").string(), busy_timeout_ms);
    return std::make_unique<PostgresDatabase>(
        url_, PostgresDatabase::Options{.lock_timeout_ms = std::max(1, busy_timeout_ms), .attempts = 1});
  }

  httplib::Client direct(int index) {
    httplib::Client client("127.0.0.1", servers_[index]->port());
    client.set_read_timeout(60, 0);
    return client;
  }
  httplib::Client through_nginx() {
    httplib::Client client("127.0.0.1", nginx_->port());
    client.set_read_timeout(60, 0);
    return client;
  }
  int64_t submit(httplib::Client& client, int epochs) {
    auto r =
        client.Post("/retrain", admin_headers(), "{\"epochs\": " + std::to_string(epochs) + "}", "application/json");
    EXPECT_TRUE(r);
    if (!r) return 0;
    EXPECT_EQ(r->status, 202) << r->body;
    return body_of(r).value("job_id", int64_t{0});
  }
  // The job's owner column ("a/<token>"): which replica runs it, as an index into servers_ (-1: none yet).
  int owner_of(int64_t job) {
    auto rows = state_database()->query("SELECT owner FROM jobs WHERE id = ?", {job});
    const std::string owner = rows.empty() ? "" : rows[0].text("owner");
    return owner.rfind("a/", 0) == 0 ? 0 : owner.rfind("b/", 0) == 0 ? 1 : -1;
  }
  // Waits until the job runs with batch progress, as seen by `client`; returns the owner's index.
  int wait_running(httplib::Client& client, int64_t job) {
    for (int i = 0; i < 600; ++i) {
      json s = body_of(client.Get("/retrain_status/" + std::to_string(job)));
      if (s["status"] == "running" && s["progress"].is_object() && s["progress"].contains("batch"))
        return owner_of(job);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return -1;
  }

  // SIGSTOPs replica `index` at a moment it holds no write lock on the database. A process stopped inside a
  // write transaction keeps the lock until it continues (SQLite's file lock; PostgreSQL's advisory lock), so no
  // replica could record anything (see docs/replicas.md); that pause is undone and retried. Returns false if no
  // such moment was found.
  bool pause_outside_a_write(int index) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      ::kill(servers_[index]->pid(), SIGSTOP);
      try {
        state_database(/*busy_timeout_ms=*/0)->transaction([](Database::Session&) {});
        return true;
      } catch (const DatabaseBusyError&) {
        ::kill(servers_[index]->pid(), SIGCONT);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    return false;
  }

  fs::path state_;
  std::string url_;  // the replicas' database (PostgreSQL)
  std::vector<std::unique_ptr<ServeProcess>> servers_;
  std::unique_ptr<NginxProcess> nginx_;
  static inline int database_count_ = 0;
};

}  // namespace mriscan::server_test
