// A PostgreSQL cluster of the test's own: Debian's server binaries, `initdb` into a fresh temporary directory,
// started on a free loopback port with its socket in that directory, stopped and removed at the end. PostgreSQL
// refuses to run as root, so under root every server command runs as the unprivileged `postgres` user that
// Debian's package creates (runuser). The superuser is `mriscan`, trusted on loopback (a test cluster only).
// Faults for the tests: restart (a fast shutdown, then a start) and kill (SIGKILL to the postmaster and every
// server process, then a start, which recovers from the WAL as after a crash).
// What it is not: a fixture for production settings (the load test's database is started the same way and says so).
#pragma once

#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/server_fixture.h"

namespace mriscan::server_test {

class PostgresCluster {
 public:
  // The newest /usr/lib/postgresql/<version>/bin with initdb, or nullopt (the caller skips).
  static std::optional<fs::path> bin_dir() {
    std::optional<fs::path> found;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", error))
      if (fs::exists(entry.path() / "bin" / "initdb") && (!found || entry.path() / "bin" > *found))
        found = entry.path() / "bin";
    return found;
  }

  PostgresCluster() : bin_(*bin_dir()), port_(free_port()) {
    char pattern[] = "/tmp/mriscan-postgres-XXXXXX";
    dir_ = ::mkdtemp(pattern);
    if (::geteuid() == 0) {
      const passwd* user = ::getpwnam("postgres");
      if (!user) throw std::runtime_error("running as root, and there is no 'postgres' user to run PostgreSQL as");
      if (::chown(dir_.c_str(), user->pw_uid, user->pw_gid) != 0) throw std::runtime_error("chown " + dir_.string());
      as_user_ = "runuser -u postgres -- ";
    }
    run(bin("initdb") + " --no-sync -A trust -U mriscan -E UTF8 -D " + data() + " > " + (dir_ / "initdb.log").string());
    start();
  }
  ~PostgresCluster() {
    std::system((as_user_ + bin("pg_ctl") + " -D " + data() + " -m immediate stop > /dev/null 2>&1").c_str());
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  PostgresCluster(const PostgresCluster&) = delete;
  PostgresCluster& operator=(const PostgresCluster&) = delete;

  int port() const { return port_; }
  std::string url(const std::string& database = "postgres") const {
    return "postgresql://mriscan@127.0.0.1:" + std::to_string(port_) + "/" + database;
  }
  // A new, empty database; returns its URL.
  std::string create_database(const std::string& name) {
    run(bin("psql") + " -q -h 127.0.0.1 -p " + std::to_string(port_) + " -U mriscan -d postgres -c 'CREATE DATABASE " +
        name + "'");
    return url(name);
  }

  void start() {
    run(bin("pg_ctl") + " -D " + data() + " -l " + (dir_ / "server.log").string() + " -w -o \"-p " +
        std::to_string(port_) + " -k " + dir_.string() + " -c listen_addresses=127.0.0.1\" start >> " +
        (dir_ / "pg_ctl.log").string() + " 2>&1");
  }
  void restart() {
    run(bin("pg_ctl") + " -D " + data() + " -m fast -w stop > /dev/null");
    start();
  }
  // SIGKILL to every process of the cluster (its children first found, then the postmaster, then them); start()
  // recovers it. Returns once the postmaster is gone.
  void kill_all() {
    const pid_t postmaster = std::stoi(read_bytes((fs::path(data()) / "postmaster.pid").string()));
    std::vector<pid_t> children;  // the backends and workers, found before they are orphaned
    for (const auto& entry : fs::directory_iterator("/proc")) {
      const std::string name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream stat(entry.path() / "stat");
      std::string pid, comm, state, parent;
      stat >> pid >> comm >> state >> parent;
      if (parent == std::to_string(postmaster)) children.push_back(std::stoi(pid));
    }
    ::kill(-postmaster, SIGKILL);  // its process group (pg_ctl starts it in a session of its own): later children too
    ::kill(postmaster, SIGKILL);
    for (pid_t child : children) ::kill(child, SIGKILL);
    for (int i = 0; i < 100 && ::kill(postmaster, 0) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::string log() const { return read_bytes((dir_ / "server.log").string()); }

 private:
  std::string bin(const std::string& name) const { return as_user_ + (bin_ / name).string(); }
  std::string data() const { return (dir_ / "data").string(); }
  void run(const std::string& command) {
    if (std::system(command.c_str()) != 0) throw std::runtime_error("failed: " + command + "\n" + log());
  }

  fs::path bin_;
  int port_;
  fs::path dir_;
  std::string as_user_;  // "runuser -u postgres -- " under root
};

}  // namespace mriscan::server_test
