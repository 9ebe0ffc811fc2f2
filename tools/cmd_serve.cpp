// `mriscan serve`: parses the options into a ServerConfig, builds the App (server/app.h), handles signals, listens.
// The concurrency policy (HTTP workers, predictions, retraining, shutdown, limits) is described in server/app.h.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include "data/dataset.h"
#include "engine/kernels/matmul_precision.h"
#include "engine/parallel.h"
#include "server/app.h"
#include "tools/args.h"
#include "tools/command.h"

namespace mriscan {
namespace {

const char* kSynopsis = R"(usage: mriscan serve (--model FILE | --models-dir DIR) [options]

Serves the classifier over HTTP with a web UI at http://HOST:PORT/ and the API described at /docs.
)";

// The options that set a number in ServerConfig: one row each, so parsing and --help (which shows the default of
// ServerConfig{}) read the same description.
struct NumberOption {
  Option option;  // help without the default
  int minimum;
  int (*get)(const ServerConfig&);
  void (*set)(ServerConfig&, int);
};

const std::vector<NumberOption> kNumberOptions = {
    {{"http-threads", "N", "HTTP worker threads"},
     1,
     [](const ServerConfig& c) { return c.http_threads; },
     [](ServerConfig& c, int v) { c.http_threads = v; }},
    {{"max-queued", "N", "requests allowed to wait for a worker before 503"},
     0,
     [](const ServerConfig& c) { return c.max_queued_requests; },
     [](ServerConfig& c, int v) { c.max_queued_requests = v; }},
    {{"max-body-mb", "N", "maximum request body in MB"},
     1,
     [](const ServerConfig& c) { return static_cast<int>(c.max_body_bytes >> 20); },
     [](ServerConfig& c, int v) { c.max_body_bytes = static_cast<size_t>(v) << 20; }},
    {{"max-image-side", "N", "maximum image width or height"},
     1,
     [](const ServerConfig& c) { return c.image_limits.max_side; },
     [](ServerConfig& c, int v) { c.image_limits.max_side = v; }},
    {{"max-image-mpix", "N", "maximum image size in megapixels"},
     1,
     [](const ServerConfig& c) { return static_cast<int>(c.image_limits.max_pixels / 1'000'000); },
     [](ServerConfig& c, int v) { c.image_limits.max_pixels = int64_t{v} * 1'000'000; }},
    {{"max-batch", "N", "maximum files per /predict_batch"},
     1,
     [](const ServerConfig& c) { return c.max_batch_files; },
     [](ServerConfig& c, int v) { c.max_batch_files = v; }},
    {{"retrain-max-per-class", "N", "cap training images per class in retraining (0: all)"},
     0,
     [](const ServerConfig& c) { return c.retrain.default_max_samples_per_class; },
     [](ServerConfig& c, int v) { c.retrain.default_max_samples_per_class = v; }},
    {{"retrain-batch-size", "N", "batch size of retraining"},
     1,
     [](const ServerConfig& c) { return c.retrain.batch_size; },
     [](ServerConfig& c, int v) { c.retrain.batch_size = v; }},
};

std::vector<Option> serve_options() {
  std::vector<Option> options = {
      {"model", "FILE", "model file to import as v1 when the state has no model yet"},
      {"class-names", "A,B,..", "class names of a --model file without them (a torchvision state dict)"},
      {"models-dir", "DIR", "or: import every model.safetensors under DIR (oldest first, newest active)"},
      {"data", "DIR", "training data for retraining and /dataset_stats (the shared dataset)"},
      {"state-dir", "DIR", "SQLite database, uploads and model versions (runs/serve)"},
      {"host", "HOST", "address to bind (127.0.0.1)"},
      {"port", "N", "port (8080; 0 picks a free one)"},
      {"admin-token-file", "FILE",
       "file holding the admin token; else $MRISCAN_ADMIN_TOKEN; else STATE_DIR/admin_token, created with a random "
       "token (mode 0600). Never on the command line: /proc/PID/cmdline is readable by every user"},
      {"activation-rule", "RULE", "after a retrain: not-worse, always or never (not-worse)"},
      {"threads", "N", "kernel threads that concurrent predictions share (physical cores)"},
      {"precision", "NAME", "fp32 | bf16: the GEMMs' precision, also of retraining (fp32; bf16 needs AVX512-BF16)"},
      {"web-root", "DIR", "folder with openapi.json and ui/ (the source tree's server/)"},
      {"replica", "NAME",
       "this server's name in /health and X-Replica when several share a state directory "
       "($MRISCAN_REPLICA, else HOSTNAME-PID)"},
      {"quiet", "", "no per-request log lines"},
  };
  const ServerConfig defaults;
  for (const NumberOption& number : kNumberOptions) {
    Option option = number.option;
    const int value = number.get(defaults);
    if (value != 0) option.help += " (" + std::to_string(value) + ")";
    options.push_back(option);
  }
  return options;
}

std::string trimmed(std::string text) {
  const char* space = " \t\r\n";
  text.erase(0, text.find_first_not_of(space));
  text.erase(text.find_last_not_of(space) + 1);
  return text;
}

std::string read_token_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw CommandError("--admin-token-file: cannot read '" + path + "'");
  std::stringstream content;
  content << in.rdbuf();
  const std::string token = trimmed(content.str());
  if (token.size() < 16) throw CommandError("--admin-token-file: '" + path + "' must hold a token of 16+ characters");
  return token;
}

std::string random_token() {
  std::random_device device;
  std::string token;
  static const char* kHex = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) token += kHex[device() % 16];
  return token;
}

// The token kept in the state directory: read it, or create it (mode 0600). Replicas starting together on one
// state must end up with one token, so the new file is published with link(), which fails if another process
// created the name first; then that one is read.
std::string state_dir_token(const std::string& state_dir, const std::string& path) {
  if (std::filesystem::exists(path)) return read_token_file(path);
  std::filesystem::create_directories(state_dir);
  const std::string token = random_token();
  const std::string tmp_path = path + ".tmp." + std::to_string(getpid()) + "-" + random_token().substr(0, 8);
  const int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  const bool written =
      fd >= 0 && ::write(fd, token.data(), token.size()) == static_cast<ssize_t>(token.size()) && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  bool linked = written && ::link(tmp_path.c_str(), path.c_str()) == 0;
  int link_error = errno;
  if (written && !linked && link_error != EEXIST) {  // a file system without hard links: rename (racy, but works)
    linked = std::rename(tmp_path.c_str(), path.c_str()) == 0;
    link_error = errno;
  }
  ::unlink(tmp_path.c_str());
  if (!written) throw CommandError("serve: cannot write the admin token to '" + tmp_path + "'");
  if (!linked && link_error != EEXIST)
    throw CommandError("serve: cannot create '" + path + "': " + std::strerror(link_error));
  if (!linked) return read_token_file(path);                             // EEXIST: another replica's token
  const int dir_fd = ::open(state_dir.c_str(), O_RDONLY | O_DIRECTORY);  // the new name survives a power cut
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return token;
}

// An integer option that must be at least `minimum`.
int int_option(const Args& args, const std::string& name, int fallback, int minimum) {
  const int value = args.get_int(name, fallback);
  if (value < minimum) throw CommandError("--" + name + " must be an integer >= " + std::to_string(minimum));
  return value;
}

int run_serve(const std::vector<std::string>& raw) {
  const std::vector<Option> options = serve_options();
  Args args(raw, options);
  if (args.help()) {
    std::cout << usage_text(kSynopsis, options);
    return 0;
  }
  ServerConfig config;
  config.initial_model = args.get("model", "");
  config.initial_class_names = args.get_list("class-names");
  config.models_dir = args.get("models-dir", "");
  config.state_dir = args.get("state-dir", "runs/serve");
  if (args.has("data")) {
    config.data_dir = args.get("data", "");
  } else {
    try {
      config.data_dir = default_dataset_dir();
    } catch (const std::exception& error) {
      std::cerr << "serve: no training data (" << error.what() << "); retraining and /dataset_stats are off\n";
    }
  }
  // The admin token: a file, the environment, or one kept in the state directory (generated once, never printed).
  std::string token_source;
  const char* env_token = std::getenv("MRISCAN_ADMIN_TOKEN");
  if (args.has("admin-token-file")) {
    token_source = args.get("admin-token-file", "");
    config.admin_token = read_token_file(token_source);
  } else if (env_token && *env_token) {
    token_source = "$MRISCAN_ADMIN_TOKEN";
    config.admin_token = trimmed(env_token);
  } else {
    token_source = (std::filesystem::path(config.state_dir) / "admin_token").string();
    config.admin_token = state_dir_token(config.state_dir, token_source);
  }
  config.retrain.rule = parse_activation_rule(args.get("activation-rule", "not-worse"));
  for (const NumberOption& number : kNumberOptions)
    number.set(config, int_option(args, number.option.name, number.get(config), number.minimum));
  config.log_requests = !args.flag("quiet");
  config.web_root = args.get("web-root", "");
  const char* env_replica = std::getenv("MRISCAN_REPLICA");
  config.replica = args.get("replica", env_replica ? env_replica : "");
  if (args.has("threads")) set_num_threads(int_option(args, "threads", 1, 1));
  set_matmul_precision(parse_matmul_precision(args.get("precision", "fp32")));
  const std::string host = args.get("host", "127.0.0.1");
  const int port = int_option(args, "port", 8080, 0);

  // A file-size limit (ulimit -f) must make a write fail (EFBIG: "disk full", answered 507), not kill the server.
  std::signal(SIGXFSZ, SIG_IGN);
  // Signals go to one thread that waits for them (blocked everywhere else, so every thread created from here on
  // inherits the mask). SIGUSR1 is our own "exit now" for that thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  App app(config);
  std::cerr << "serve: " << app.startup_message() << "\n";
  const int bound = app.bind(host, port);
  std::thread signal_waiter([&] {
    int received = 0;
    sigwait(&signals, &received);
    if (received == SIGUSR1) return;
    std::cerr << "serve: " << (received == SIGTERM ? "SIGTERM" : "SIGINT")
              << ": draining requests and shutting down (send it again to exit at once)\n";
    app.request_shutdown();
    // Draining waits for requests in progress; a second signal is the operator saying "now".
    sigwait(&signals, &received);
    if (received == SIGUSR1) return;
    std::cerr << "serve: second signal: exiting without waiting (committed state is safe; see server/state/database.h)\n";
    std::_Exit(3);
  });
  std::cerr << "serve: listening on http://" << host << ":" << bound << "/  (API: /docs, metrics: /metrics)\n";
  std::cerr << "serve: admin routes need the token from " << token_source << "\n";
  app.listen();
  pthread_kill(signal_waiter.native_handle(), SIGUSR1);
  signal_waiter.join();
  app.stop();
  std::cerr << "serve: stopped\n";
  return 0;
}

const RegisterCommand kRegister({"serve", "REST API + web UI: predictions, uploads, background retraining", run_serve});

}  // namespace
}  // namespace mriscan
