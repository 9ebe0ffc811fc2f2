// `mriscan serve`: the REST API, the web UI, uploads, background retraining and model versions (server/app.h).
//
// Concurrency policy (2 cores shared by serving and training):
//   * HTTP I/O: cpp-httplib's accept loop hands each connection to a bounded pool of --http-threads workers with at
//     most --max-queued connections waiting (server/request_queue.h); when both are full the connection gets a
//     503 with Retry-After instead of piling up.
//   * Predictions: one forward at a time per model (Classifier serialises predict/explain on its mutex); each
//     forward uses every core (--threads, default the physical cores) through the kernels' OpenMP loops. Under
//     concurrent load requests queue on that mutex, which on 2 cores gives the best batch-1 latency; the model
//     pointer is copied per request, so a model swap never blocks or fails a prediction.
//   * Retraining: ONE background worker (server/job_queue.h) with a thread budget of 1 kernel thread
//     (engine/parallel.h set_thread_num_threads, per thread) at nice +10 (setpriority on its own thread id). So
//     a retrain uses one core at low priority; predictions preempt it and keep the other core. The dataset
//     statistics scan runs at nice +10 too.
//   * Shutdown: SIGTERM/SIGINT turn /ready to 503, serve the connections already queued, stop accepting, let the
//     requests in progress finish (httplib joins the pool), then stop the retraining worker (a running job is
//     recorded as failed: interrupted) and exit 0.
//   * Limits: --max-body-mb for any request body (413), --max-image-side and --max-image-mpix checked from the
//     image header before pixels are allocated (decompression bombs, 400), --max-batch files per /predict_batch.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>
#include <thread>

#include "engine/parallel.h"
#include "models/dataset.h"
#include "server/app.h"
#include "tools/args.h"
#include "tools/command.h"

namespace mriscan {
namespace {

const char* kUsage = R"(usage: mriscan serve (--model FILE | --models-dir DIR) [options]

Serves the classifier over HTTP with a web UI at http://HOST:PORT/ and the API described at /docs.

  --model FILE            model file to import as v1 when the state has no model yet
  --models-dir DIR        or: import every model.safetensors under DIR (oldest first, newest active)
  --data DIR              training data for retraining and /dataset_stats (default: the shared dataset)
  --state-dir DIR         SQLite database, uploads and model versions (default: runs/serve)
  --host HOST             address to bind (default 127.0.0.1)
  --port N                port (default 8080; 0 picks a free one)
  --admin-token TOKEN     token for admin routes (default: $MRISCAN_ADMIN_TOKEN, else a random one, printed)
  --activation-rule RULE  after a retrain: not-worse (default), always or never
  --threads N             kernel threads per prediction (default: physical cores)
  --http-threads N        HTTP worker threads (default 8)
  --max-queued N          connections allowed to wait for a worker before 503 (default 64)
  --max-body-mb N         maximum request body (default 64)
  --max-image-side N      maximum image width or height (default 8192)
  --max-image-mpix N      maximum image size in megapixels (default 16)
  --max-batch N           maximum files per /predict_batch (default 64)
  --retrain-max-per-class N   cap training images per class in retraining (default 0 = all)
  --retrain-batch-size N  batch size of retraining (default 32)
  --quiet                 no per-request log lines
)";

std::string random_token() {
  std::random_device device;
  std::string token;
  static const char* kHex = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) token += kHex[device() % 16];
  return token;
}

// An integer option that must be at least `minimum`.
int int_option(const Args& args, const std::string& name, int fallback, int minimum) {
  const int value = args.get_int(name, fallback);
  if (value < minimum) throw CommandError("--" + name + " must be an integer >= " + std::to_string(minimum));
  return value;
}

int run_serve(const std::vector<std::string>& raw) {
  Args args(raw,
            {"model", "models-dir", "data", "state-dir", "host", "port", "admin-token", "activation-rule", "threads",
             "http-threads", "max-queued", "max-body-mb", "max-image-side", "max-image-mpix", "max-batch",
             "retrain-max-per-class", "retrain-batch-size"},
            {"quiet"});
  if (args.help()) {
    std::cout << kUsage;
    return 0;
  }
  ServerConfig config;
  config.initial_model = args.get("model", "");
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
  const char* env_token = std::getenv("MRISCAN_ADMIN_TOKEN");
  config.admin_token = args.get("admin-token", env_token ? env_token : "");
  const bool generated_token = config.admin_token.empty();
  if (generated_token) config.admin_token = random_token();
  config.retrain.rule = parse_activation_rule(args.get("activation-rule", "not-worse"));
  config.retrain.default_max_samples_per_class = int_option(args, "retrain-max-per-class", 0, 0);
  config.retrain.batch_size = int_option(args, "retrain-batch-size", 32, 1);
  config.http_threads = int_option(args, "http-threads", 8, 1);
  config.max_queued_requests = int_option(args, "max-queued", 64, 0);
  config.max_body_bytes = static_cast<size_t>(int_option(args, "max-body-mb", 64, 1)) << 20;
  config.image_limits.max_side = int_option(args, "max-image-side", 8192, 1);
  config.image_limits.max_pixels = int64_t(int_option(args, "max-image-mpix", 16, 1)) * 1'000'000;
  config.max_batch_files = int_option(args, "max-batch", 64, 1);
  config.log_requests = !args.flag("quiet");
  if (args.has("threads")) set_num_threads(int_option(args, "threads", 1, 1));
  const std::string host = args.get("host", "127.0.0.1");
  const int port = int_option(args, "port", 8080, 0);

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
              << ": draining requests and shutting down\n";
    app.request_shutdown();
  });
  std::cerr << "serve: listening on http://" << host << ":" << bound << "/  (API: /docs, metrics: /metrics)\n";
  if (generated_token)
    std::cerr << "serve: admin token (set --admin-token or MRISCAN_ADMIN_TOKEN to choose one): " << config.admin_token
              << "\n";
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
