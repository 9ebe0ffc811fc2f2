// Shared by the server tests (tests/server/test_server.cpp, tests/server/test_server_lifecycle.cpp): real models
// and real scans in a temporary folder, request helpers, and the ServerApi fixture (an App on a free port in this
// process).
//
// The model is a real (tiny) one: a random-init MobileNetV2 width 0.35 at 64x64 written with models/model_file.h,
// served through the real Classifier and retrained by the real trainer on a small copy of real scans from the
// shared dataset (8 per class). Nothing here is a stand-in for server or model code.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "io/image_io.h"
#include "models/mobilenet_v2.h"
#include "models/model_file.h"
#include "server/app.h"
#include "server/transport/http.h"

namespace mriscan::server_test {

namespace fs = std::filesystem;
using json = nlohmann::json;

inline const std::vector<std::string> kClasses = {"glioma", "meningioma", "notumor", "pituitary"};
inline const std::string kToken = "test-token-0123456789";

// ---------------------------------------------------------------------------------------------------------------
// Fixtures shared by the whole file: a temporary folder with two tiny model files and a tiny dataset of real scans.

inline std::string write_tiny_model(const fs::path& path, uint32_t seed, double val_accuracy) {
  MobileNetV2Config config;
  config.width_mult = 0.35f;
  config.num_classes = 4;
  config.seed = seed;
  MobileNetV2 model(config);
  json metrics = {{"validation", {{"accuracy", val_accuracy}}}, {"history", json::array()}};
  save_model_file(path.string(), model, 64, kClasses,
                  {{"temperature", "1.0"}, {"version", "test-" + std::to_string(seed)}, {"metrics", metrics.dump()}});
  return path.string();
}

// The per-process temporary folder: two tiny model files and a small copy of the real dataset (the first 8 scans
// of every class). Removed when the process exits.
struct Shared {
  fs::path root;
  std::string model_a, model_b;    // two different random initialisations
  std::string data_dir;            // Training/<class>/ with 8 real scans each; "" without the shared dataset
  std::vector<std::string> scans;  // a few real scan paths (from the copy)

  Shared() {
    root = fs::temp_directory_path() / ("mriscan_test_server_" + std::to_string(::getpid()));
    fs::remove_all(root);
    fs::create_directories(root);
    model_a = write_tiny_model(root / "model_a.safetensors", 1, 0.25);
    model_b = write_tiny_model(root / "model_b.safetensors", 2, 0.25);
    std::string source;
    try {
      source = default_dataset_dir();
    } catch (const std::exception&) {
      return;  // tests that need scans skip
    }
    data_dir = (root / "data").string();
    for (const std::string& name : kClasses) {
      fs::path from = fs::path(source) / "Training" / name, to = fs::path(data_dir) / "Training" / name;
      fs::create_directories(to);
      std::vector<fs::path> files;
      for (const auto& entry : fs::directory_iterator(from)) files.push_back(entry.path());
      std::sort(files.begin(), files.end());
      for (size_t i = 0; i < 8 && i < files.size(); ++i) {
        fs::copy_file(files[i], to / files[i].filename());
        if (i < 2) scans.push_back((to / files[i].filename()).string());
      }
    }
  }
  ~Shared() {
    std::error_code ignored;
    fs::remove_all(root, ignored);
  }
};

inline const Shared& shared() {
  static Shared state;
  return state;
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A random-noise PNG: distinct content for every seed (uploads are content-addressed).
inline std::string noise_png(uint32_t seed, int width = 48, int height = 40) {
  Image image(width, height);
  std::mt19937 rng(seed);
  for (auto& v : image.rgb) v = static_cast<uint8_t>(rng());
  std::vector<uint8_t> png = encode_png(image);
  return std::string(png.begin(), png.end());
}

// CRC-32 (IEEE) for hand-made PNG chunks.
inline uint32_t crc32(const std::string& bytes) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char byte : bytes) {
    crc ^= byte;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

// A 60-byte PNG whose header claims width x height pixels: a decompression bomb's first bytes.
inline std::string png_claiming(uint32_t width, uint32_t height) {
  auto be32 = [](uint32_t v) {
    return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
  };
  std::string ihdr = "IHDR" + be32(width) + be32(height) + std::string{8, 2, 0, 0, 0};  // 8-bit RGB
  std::string png = "\x89PNG\r\n\x1a\n";
  png += be32(13) + ihdr + be32(crc32(ihdr));
  std::string idat = "IDAT" + std::string("\x78\x9c\x63\x00\x00\x00\x01\x00\x01", 9);
  png += be32(9) + idat + be32(crc32(idat));
  return png;
}

inline httplib::MultipartFormDataItems one_file(const std::string& field, const std::string& bytes,
                                        const std::string& name = "scan.jpg") {
  return {{field, bytes, name, "application/octet-stream"}};
}

inline json body_of(const httplib::Result& result) {
  if (!result) return json();
  return json::parse(result->body, nullptr, false);
}

inline httplib::Headers admin_headers() { return {{"Authorization", "Bearer " + kToken}}; }

inline ServerConfig base_config(const fs::path& state, const std::string& model) {
  ServerConfig config;
  config.state_dir = state.string();
  config.initial_model = model;
  config.data_dir = shared().data_dir;
  config.admin_token = kToken;
  config.max_body_bytes = 4u << 20;
  config.max_batch_files = 4;
  config.image_limits = {.max_pixels = 4'000'000, .max_side = 4096};
  config.retrain.rule = ActivationRule::kAlways;
  config.retrain.batch_size = 8;
  config.http_threads = 8;
  config.log_requests = false;
  return config;
}

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Polls GET /retrain_status/{id} until the job is finished; returns the last body.
inline json wait_for_job(httplib::Client& client, int64_t id, double timeout_seconds = 600) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
  json status;
  while (std::chrono::steady_clock::now() < deadline) {
    status = body_of(client.Get("/retrain_status/" + std::to_string(id)));
    // An error's body (503 while the database is away) has a numeric "status": keep polling.
    const std::string s = status.is_object() && status["status"].is_string() ? status["status"].get<std::string>() : "";
    if (s == "completed" || s == "failed" || s == "cancelled") return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return status;
}

// One App per test, on a free port, with its own state folder.
class ServerApi : public ::testing::Test {
 protected:
  void SetUp() override {
    if (shared().scans.empty()) GTEST_SKIP() << "shared dataset not found (set MRISCAN_SHARED)";
    state_ = shared().root / ("state_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(state_);
    start(base_config(state_, shared().model_a));
  }
  void start(ServerConfig config) {
    app_ = std::make_unique<App>(std::move(config));
    port_ = app_->start("127.0.0.1", 0);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
    client_->set_read_timeout(120, 0);
  }
  void TearDown() override {
    client_.reset();
    app_.reset();
  }
  // A fresh state folder and App with the fixture's configuration changed by `change`.
  void restart(const std::function<void(ServerConfig&)>& change) {
    client_.reset();
    app_.reset();
    fs::remove_all(state_);
    ServerConfig config = base_config(state_, shared().model_a);
    change(config);
    start(std::move(config));
  }
  httplib::Client& client() { return *client_; }
  httplib::Result predict(const std::string& bytes, const std::string& query = "") {
    return client().Post(("/predict" + query).c_str(), one_file("file", bytes));
  }

  fs::path state_;
  std::unique_ptr<App> app_;
  std::unique_ptr<httplib::Client> client_;
  int port_ = 0;
};

// Raw sockets, for what httplib::Client will not send: partial, slow, malformed or pipelined requests.

// Opens a TCP connection to 127.0.0.1:port and sends `partial` (possibly an unfinished request).
inline int open_stalled_connection(int port, const std::string& partial) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  if (!partial.empty()) ::send(fd, partial.data(), partial.size(), MSG_NOSIGNAL);
  return fd;
}

inline void send_text(int fd, const std::string& text) { ::send(fd, text.data(), text.size(), MSG_NOSIGNAL); }

// Everything the server sends until it closes the connection or `timeout_seconds` pass.
inline std::string read_until_close(int fd, double timeout_seconds = 10.0) {
  timeval timeout{static_cast<time_t>(timeout_seconds),
                  static_cast<suseconds_t>((timeout_seconds - static_cast<time_t>(timeout_seconds)) * 1e6)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  std::string received;
  char buffer[16384];
  for (;;) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    received.append(buffer, static_cast<size_t>(n));
  }
  return received;
}

// The status code of the first response in `text` (0 if there is none).
inline int status_of(const std::string& text) {
  if (text.rfind("HTTP/1.1 ", 0) != 0 || text.size() < 12) return 0;
  return std::stoi(text.substr(9, 3));
}

// A free loopback port: bind to 0, read it, release it.
inline int free_port() {
  int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  ::getsockname(probe, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(probe);
  return ntohs(address.sin_port);
}

}  // namespace mriscan::server_test
