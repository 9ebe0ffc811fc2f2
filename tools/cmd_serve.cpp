// `mriscan serve`: parses the options into a ServerConfig, builds the App (server/app.h), handles signals, listens.
// The concurrency policy (HTTP workers, predictions, retraining, shutdown, limits) is described in server/app.h.
// What it is not: the server itself (server/), which this only configures, starts and stops.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
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
#include "tools/command.h"
#include "tools/command_line.h"

namespace mriscan {
namespace {

const char* kSynopsis = R"(usage: mriscan serve (--model FILE | --models-dir DIR) [options]

Serves the classifier over HTTP with a web UI at http://HOST:PORT/ and the API described at /docs.
)";

// The options that set a number in ServerConfig: one row each, so parsing and --help (which shows the default of
// ServerConfig{}) read the same description.
struct NumberOption {
  const char* name;   // without "--"
  const char* help;   // without the default
  int minimum;
  int (*get)(const ServerConfig&);
  void (*set)(ServerConfig&, int);
};

const std::vector<NumberOption> kNumberOptions = {
    {"http-threads", "HTTP worker threads", 1,
     [](const ServerConfig& c) { return c.http_threads; },
     [](ServerConfig& c, int v) { c.http_threads = v; }},
    {"max-queued", "requests allowed to wait for a worker before 503", 0,
     [](const ServerConfig& c) { return c.max_queued_requests; },
     [](ServerConfig& c, int v) { c.max_queued_requests = v; }},
    {"max-body-mb", "maximum request body in MB", 1,
     [](const ServerConfig& c) { return static_cast<int>(c.max_body_bytes >> 20); },
     [](ServerConfig& c, int v) { c.max_body_bytes = static_cast<size_t>(v) << 20; }},
    {"max-image-side", "maximum image width or height", 1,
     [](const ServerConfig& c) { return c.image_limits.max_side; },
     [](ServerConfig& c, int v) { c.image_limits.max_side = v; }},
    {"max-image-mpix", "maximum image size in megapixels", 1,
     [](const ServerConfig& c) { return static_cast<int>(c.image_limits.max_pixels / 1'000'000); },
     [](ServerConfig& c, int v) { c.image_limits.max_pixels = int64_t{v} * 1'000'000; }},
    {"ready-busy-seconds", "GET /ready answers 503 while every HTTP worker has been busy this long", 1,
     [](const ServerConfig& c) { return static_cast<int>(c.ready_busy_seconds); },
     [](ServerConfig& c, int v) { c.ready_busy_seconds = v; }},
    {"max-batch", "maximum files per /predict_batch", 1,
     [](const ServerConfig& c) { return c.max_batch_files; },
     [](ServerConfig& c, int v) { c.max_batch_files = v; }},
    {"max-decode-mpix-scans",
     "decoding work per request in millions of pixel-scans (width x height x components, for every scan of a "
     "progressive JPEG; 413 beyond)",
     1, [](const ServerConfig& c) { return static_cast<int>(c.decode_budget_pixel_scans / 1'000'000); },
     [](ServerConfig& c, int v) { c.decode_budget_pixel_scans = int64_t{v} * 1'000'000; }},
    {"explain-max-waiting",
     "Grad-CAM requests that may wait for the running one before 503 (lowered to keep half the workers free)", 0,
     [](const ServerConfig& c) { return c.explain_max_waiting; },
     [](ServerConfig& c, int v) { c.explain_max_waiting = v; }},
    {"retrain-max-per-class", "cap training images per class in retraining (0: all)", 0,
     [](const ServerConfig& c) { return c.retrain.default_max_samples_per_class; },
     [](ServerConfig& c, int v) { c.retrain.default_max_samples_per_class = v; }},
    {"retrain-batch-size", "batch size of retraining", 1,
     [](const ServerConfig& c) { return c.retrain.batch_size; },
     [](ServerConfig& c, int v) { c.retrain.batch_size = v; }},
    {"audit", "1: every answer is recorded in the audit trail (GET /audit); 0: none are", 0,
     [](const ServerConfig& c) { return int(c.audit.enabled); },
     [](ServerConfig& c, int v) { c.audit.enabled = v != 0; }},
    {"audit-retention-days", "audit rows older than this are deleted (0: kept)", 0,
     [](const ServerConfig& c) { return c.audit.retention_days; },
     [](ServerConfig& c, int v) { c.audit.retention_days = v; }},
    {"review-max", "pending reviews kept (the oldest beyond are dropped and counted; 0: no review queue)", 0,
     [](const ServerConfig& c) { return c.review.max_pending; },
     [](ServerConfig& c, int v) { c.review.max_pending = v, c.review.enabled = v > 0; }},
    {"review-below-percent", "answers less confident than this (in percent) go to the review queue", 0,
     [](const ServerConfig& c) { return static_cast<int>(std::lround(c.review.below_confidence * 100)); },
     [](ServerConfig& c, int v) { c.review.below_confidence = v / 100.0; }},
    {"drift-window", "answers in the drift window of /health and /metrics", 1,
     [](const ServerConfig& c) { return c.drift_window; }, [](ServerConfig& c, int v) { c.drift_window = v; }},
};

// The options, with their defaults; those that map onto a ServerConfig field are parsed into `config` directly.
struct ServeOptions {
  ServerConfig config;
  std::string class_names, data, admin_token_file;  // data, admin_token_file: see cli.count() for "given"
  std::string activation_rule = "not-worse", precision = "fp32", host = "127.0.0.1";
  int port = 8080;
  int threads = 0;           // used only when given (else the engine's default, the physical cores)
  std::vector<int> numbers;  // kNumberOptions' values, in their order
  bool quiet = false;

  ServeOptions() {
    config.state_dir = "runs/serve";
    const char* env_replica = std::getenv("MRISCAN_REPLICA");
    config.replica = env_replica ? env_replica : "";
    const char* env_database = std::getenv("MRISCAN_DATABASE_URL");  // a URL with a password: not for argv
    config.database_url = env_database ? env_database : "";
    for (const NumberOption& number : kNumberOptions) numbers.push_back(number.get(config));
  }
};

void add_path_options(CommandLine& cli, ServeOptions& o) {
  cli.add_option("--model", o.config.initial_model, "model file to import as v1 when the state has no model yet")
      ->type_name("FILE");
  cli.add_option("--class-names", o.class_names,
                 "class names of a --model file without them (a torchvision state dict)")
      ->type_name("A,B,..");
  cli.add_option("--models-dir", o.config.models_dir,
                 "or: import every model.safetensors under DIR (oldest first, newest active)")
      ->type_name("DIR");
  cli.add_option("--data", o.data, "training data for retraining and /dataset_stats (the shared dataset)")
      ->type_name("DIR");
  cli.add_option("--state-dir", o.config.state_dir,
                 "SQLite database, uploads and model versions (runs/serve); with --database, local caches only")
      ->type_name("DIR");
  cli.add_option("--database", o.config.database_url,
                 "postgresql://USER@HOST:PORT/DB: the state in PostgreSQL, for replicas on several hosts (else SQLite "
                 "in the state directory). A password on the command line is visible to every local user: give the "
                 "URL in $MRISCAN_DATABASE_URL instead, or the password in a libpq passfile")
      ->type_name("URL");
}

void add_server_options(CommandLine& cli, ServeOptions& o) {
  cli.add_option("--host", o.host, "address to bind (127.0.0.1)")->type_name("HOST");
  cli.add_option("--port", o.port, "port (8080; 0 picks a free one)")->type_name("N");
  cli.add_option("--admin-token-file", o.admin_token_file,
                 "file holding the admin token; else $MRISCAN_ADMIN_TOKEN; else STATE_DIR/admin_token, created with "
                 "a random token (mode 0600). Never on the command line: /proc/PID/cmdline is readable by every user")
      ->type_name("FILE");
  cli.add_option("--activation-rule", o.activation_rule, "after a retrain: not-worse, always or never (not-worse)")
      ->type_name("RULE");
  cli.add_option("--threads", o.threads, "kernel threads that concurrent predictions share (physical cores)")
      ->type_name("N");
  cli.add_option("--precision", o.precision,
                 "fp32 | bf16: the GEMMs' precision, also of retraining (fp32; bf16 needs AVX512-BF16)")
      ->type_name("NAME");
  cli.add_option("--web-root", o.config.web_root, "folder with openapi.json and ui/ (the source tree's server/)")
      ->type_name("DIR");
  cli.add_option("--inference-model-name", o.config.inference_model_name,
                 "the model's name in the Open Inference Protocol routes /v2/models/NAME/... (mriscan)")
      ->type_name("NAME");
  cli.add_option("--alpha", o.config.set_alpha,
                 "the level of the prediction set each answer leads with: it holds the true class with probability "
                 ">= 1 - A (0.05; the 0.05 and 0.01 sets are always given too)")
      ->type_name("A");
  cli.add_option("--replica", o.config.replica,
                 "this server's name in /health and X-Replica when several share a state directory "
                 "($MRISCAN_REPLICA, else HOSTNAME-PID)")
      ->type_name("NAME");
  cli.add_flag("--quiet", o.quiet, "no per-request log lines");
}

// One option per row of kNumberOptions, its help ending in ServerConfig{}'s value (none for 0).
void add_number_options(CommandLine& cli, ServeOptions& o) {
  for (size_t i = 0; i < kNumberOptions.size(); ++i) {
    const NumberOption& number = kNumberOptions[i];
    const std::string help = number.help + (o.numbers[i] != 0 ? " (" + std::to_string(o.numbers[i]) + ")" : "");
    cli.add_option(std::string("--") + number.name, o.numbers[i], help)->type_name("N");
  }
}

std::string trimmed(std::string text) {
  const char* space = " \t\r\n";
  text.erase(0, text.find_first_not_of(space));
  text.erase(text.find_last_not_of(space) + 1);
  return text;
}

// A shorter token could be guessed online: 16 characters, wherever the token comes from.
constexpr size_t kMinTokenChars = 16;

std::string read_token_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw CommandError("--admin-token-file: cannot read '" + path + "'");
  std::stringstream content;
  content << in.rdbuf();
  const std::string token = trimmed(content.str());
  if (token.size() < kMinTokenChars)
    throw CommandError("--admin-token-file: '" + path + "' must hold a token of 16+ characters");
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
void check_minimum(const std::string& name, int value, int minimum) {
  if (value < minimum) throw CommandError("--" + name + " must be an integer >= " + std::to_string(minimum));
}

struct AdminToken {
  std::string token;
  std::string source;  // where it came from, for the start-up message (never the token itself)
};

// The admin token: a file, the environment, or one kept in the state directory (generated once, never printed).
AdminToken admin_token(const CommandLine& cli, const ServeOptions& o) {
  if (cli.count("--admin-token-file")) return {read_token_file(o.admin_token_file), o.admin_token_file};
  const char* env_token = std::getenv("MRISCAN_ADMIN_TOKEN");
  if (env_token && *env_token) {
    const std::string token = trimmed(env_token);
    if (token.size() < kMinTokenChars) throw CommandError("$MRISCAN_ADMIN_TOKEN must be a token of 16+ characters");
    return {token, "$MRISCAN_ADMIN_TOKEN"};
  }
  if (!o.config.database_url.empty())  // replicas on other hosts could not read a token kept here
    throw CommandError("serve: with --database, give the admin token in $MRISCAN_ADMIN_TOKEN or --admin-token-file "
                       "(every replica needs the same one)");
  const std::string path = (std::filesystem::path(o.config.state_dir) / "admin_token").string();
  return {state_dir_token(o.config.state_dir, path), path};
}

// The options, checked (--port too, though not a ServerConfig field), as a ServerConfig without its admin token.
ServerConfig server_config(const CommandLine& cli, const ServeOptions& o) {
  check_minimum("port", o.port, 0);
  ServerConfig config = o.config;
  config.initial_class_names = comma_separated("--class-names", o.class_names);
  if (cli.count("--data")) {
    config.data_dir = o.data;
  } else {
    try {
      config.data_dir = default_dataset_dir();
    } catch (const std::exception& error) {
      std::cerr << "serve: no training data (" << error.what() << "); retraining and /dataset_stats are off\n";
    }
  }
  if (!(config.set_alpha > 0.0 && config.set_alpha < 1.0)) throw CommandError("--alpha must be in (0, 1)");
  config.retrain.rule = parse_activation_rule(o.activation_rule);
  for (size_t i = 0; i < kNumberOptions.size(); ++i) {
    check_minimum(kNumberOptions[i].name, o.numbers[i], kNumberOptions[i].minimum);
    kNumberOptions[i].set(config, o.numbers[i]);
  }
  config.log_requests = !o.quiet;
  return config;
}

// The kernel threads and GEMM precision, process-wide settings of the engine.
void apply_engine_settings(const CommandLine& cli, const ServeOptions& o) {
  if (cli.count("--threads")) {
    check_minimum("threads", o.threads, 1);
    set_num_threads(o.threads);
  }
  set_matmul_precision(parse_matmul_precision(o.precision));
}

// Signals go to one thread that waits for them (blocked everywhere else, so every thread created from here on
// inherits the mask). SIGUSR1 is our own "exit now" for that thread.
sigset_t block_shutdown_signals() {
  // A file-size limit (ulimit -f) must make a write fail (EFBIG: "disk full", answered 507), not kill the server.
  std::signal(SIGXFSZ, SIG_IGN);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

// The thread that turns SIGTERM/SIGINT into a graceful shutdown, and a second one into an immediate exit.
// Stop it with pthread_kill(..., SIGUSR1) once the app has stopped listening.
std::thread start_signal_waiter(App& app, sigset_t signals) {
  return std::thread([&app, signals] {
    int received = 0;
    sigwait(&signals, &received);
    if (received == SIGUSR1) return;
    std::cerr << "serve: " << (received == SIGTERM ? "SIGTERM" : "SIGINT")
              << ": draining requests and shutting down (send it again to exit at once)\n";
    app.request_shutdown();
    // Draining waits for requests in progress; a second signal is the operator saying "now".
    sigwait(&signals, &received);
    if (received == SIGUSR1) return;
    std::cerr << "serve: second signal: exiting without waiting (committed state is safe; see "
                 "server/state/database.h)\n";
    std::_Exit(3);
  });
}

int run_serve(const std::vector<std::string>& args) {
  ServeOptions o;
  CommandLine cli(kSynopsis);
  add_path_options(cli, o);
  add_server_options(cli, o);
  add_number_options(cli, o);
  if (cli.parse_arguments(args) == Parsed::help_printed) return 0;
  ServerConfig config = server_config(cli, o);
  apply_engine_settings(cli, o);
  const AdminToken token = admin_token(cli, o);
  config.admin_token = token.token;
  const sigset_t signals = block_shutdown_signals();

  App app(config);
  std::cerr << "serve: " << app.startup_message() << "\n";
  const int bound = app.bind(o.host, o.port);
  std::thread signal_waiter = start_signal_waiter(app, signals);
  std::cerr << "serve: listening on http://" << o.host << ":" << bound << "/  (API: /docs, metrics: /metrics)\n";
  std::cerr << "serve: admin routes need the token from " << token.source << "\n";
  const bool listened = app.listen();
  pthread_kill(signal_waiter.native_handle(), SIGUSR1);
  signal_waiter.join();
  app.stop();
  std::cerr << (listened ? "serve: stopped\n" : "serve: stopped: the listening socket was lost\n");
  return listened ? 0 : 1;
}

const RegisterCommand kRegister({"serve", "REST API + web UI: predictions, uploads, background retraining", run_serve});

}  // namespace
}  // namespace mriscan
