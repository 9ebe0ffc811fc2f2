// `mriscan serve` as a child process, for the tests that need the real binary: kill -9 at a bad moment, SIGTERM,
// what /proc shows about it. The admin token goes through the environment (never argv).
// What it is not: a supervisor; the test decides when to start, kill and restart.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <string>
#include <vector>

#include "tests/support/server_fixture.h"

namespace mriscan::server_test {

class ServeProcess {
 public:
  // `extra` are appended to: serve --model <model> --data <data> --state-dir <state> --port <port> --quiet.
  // The log is <state>.log, or <state>.<log_name>.log when several processes share the state.
  ServeProcess(fs::path state, std::vector<std::string> extra = {}, bool token_in_environment = true,
               std::string log_name = "")
      : state_(std::move(state)), extra_(std::move(extra)), token_in_environment_(token_in_environment),
        log_name_(std::move(log_name)), port_(free_port()) {}
  ~ServeProcess() {
    if (pid_ > 0) kill(SIGKILL);
  }

  static fs::path binary() { return fs::read_symlink("/proc/self/exe").parent_path() / "mriscan"; }

  pid_t start() {
    std::vector<std::string> args = {binary().string(), "serve", "--model", shared().model_a, "--data",
                                     shared().data_dir, "--state-dir", state_.string(), "--port",
                                     std::to_string(port_), "--quiet", "--retrain-batch-size", "4"};
    args.insert(args.end(), extra_.begin(), extra_.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> environment_text;
    for (char** e = environ; *e; ++e)
      if (std::string(*e).rfind("MRISCAN_ADMIN_TOKEN=", 0) != 0) environment_text.push_back(*e);
    if (token_in_environment_) environment_text.push_back("MRISCAN_ADMIN_TOKEN=" + kToken);
    std::vector<char*> envp;
    for (auto& e : environment_text) envp.push_back(e.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log =
        (state_.parent_path() / (state_.filename().string() + (log_name_.empty() ? "" : "." + log_name_) + ".log"))
            .string();
    posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    EXPECT_EQ(posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), envp.data()), 0);
    posix_spawn_file_actions_destroy(&actions);
    log_path_ = log;
    return pid_;
  }
  bool wait_ready(double seconds = 30.0) {
    httplib::Client client("127.0.0.1", port_);
    for (int i = 0; i < seconds * 10; ++i) {
      auto r = client.Get("/ready");
      if (r && r->status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  // Sends `signal` and waits; returns the wait status.
  int kill(int signal) {
    int status = 0;
    ::kill(pid_, signal);
    ::waitpid(pid_, &status, 0);
    pid_ = 0;
    return status;
  }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string log() const { return read_bytes(log_path_); }

 private:
  fs::path state_;
  std::vector<std::string> extra_;
  bool token_in_environment_;
  std::string log_name_;
  int port_;
  pid_t pid_ = 0;
  std::string log_path_;
};

}  // namespace mriscan::server_test
