// Debian's nginx as a child process in front of `mriscan serve` replicas on loopback, running deploy/nginx.conf
// itself with only the deployment-specific lines replaced: the upstream's `server api:8080;` by one line per
// replica port, `listen 8080;` by a free loopback port, and the access log by a file of the test's.
// What it is not: a test of nginx; it is there so the replicas are tested the way they are deployed.
#pragma once

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <string>
#include <vector>

#include "tests/support/server_fixture.h"

namespace mriscan::server_test {

inline const char* kNginx = "/usr/sbin/nginx";

class NginxProcess {
 public:
  NginxProcess(const fs::path& dir, const std::vector<int>& upstream_ports) : dir_(dir), port_(free_port()) {
    fs::create_directories(dir_);
    std::string conf = read_bytes(std::string(MRISCAN_SOURCE_DIR) + "/deploy/nginx.conf");
    std::string servers;
    for (int port : upstream_ports) servers += "    server 127.0.0.1:" + std::to_string(port) + ";\n";
    replace(conf, "    server api:8080;\n", servers);
    replace(conf, "listen 8080;", "listen 127.0.0.1:" + std::to_string(port_) + ";");
    replace(conf, "access_log /dev/stdout replicas;", "access_log " + (dir_ / "access.log").string() + " replicas;");
    const fs::path conf_path = dir_ / "nginx.conf";
    std::ofstream(conf_path) << conf;
    std::vector<std::string> args = {kNginx,
                                     "-c",
                                     conf_path.string(),
                                     "-p",
                                     dir_.string(),
                                     "-g",
                                     "daemon off; user root; pid " + (dir_ / "nginx.pid").string() + "; error_log " +
                                         (dir_ / "error.log").string() + ";"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    EXPECT_EQ(posix_spawn(&pid_, argv[0], nullptr, nullptr, argv.data(), environ), 0);
    for (int i = 0; i < 100 && !accepts(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_TRUE(accepts()) << "nginx did not start: " << error_log();
  }
  ~NginxProcess() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGQUIT);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  int port() const { return port_; }
  std::string error_log() const { return read_bytes((dir_ / "error.log").string()); }

 private:
  static void replace(std::string& text, const std::string& from, const std::string& to) {
    const size_t at = text.find(from);
    ASSERT_NE(at, std::string::npos) << "deploy/nginx.conf no longer has '" << from << "'";
    text.replace(at, from.size(), to);
  }
  bool accepts() const {
    httplib::Client client("127.0.0.1", port_);
    return static_cast<bool>(client.Get("/nginx-not-routed-probe"));
  }

  fs::path dir_;
  int port_;
  pid_t pid_ = 0;
};

}  // namespace mriscan::server_test
