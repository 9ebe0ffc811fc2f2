// libFuzzer: an upload as the server handles it, minus the database: the fuzzed bytes are the body of a
// multipart/form-data POST, parsed by httplib (Server::process_request over an in-memory stream, the same call
// the server's workers make), then split into files by server/http_util.h and every file decoded with the
// server's limits (io/image_io.h). httplib itself comes from Debian's library, not instrumented: crashes there
// are still caught, out-of-bounds reads inside it are not.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "io/image_io.h"
#include "io/utf8.h"
#include "server/transport/http.h"
#include "server/http_util.h"

namespace {

// A request in memory: reads come from `input`, writes are dropped.
class MemoryStream : public httplib::Stream {
 public:
  explicit MemoryStream(std::string input) : input_(std::move(input)) {}
  bool is_readable() const override { return true; }
  bool is_writable() const override { return true; }
  ssize_t read(char* ptr, size_t size) override {
    const size_t n = std::min(size, input_.size() - offset_);
    std::memcpy(ptr, input_.data() + offset_, n);
    offset_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char*, size_t size) override { return static_cast<ssize_t>(size); }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { ip = "127.0.0.1", port = 1; }
  void get_local_ip_and_port(std::string& ip, int& port) const override { ip = "127.0.0.1", port = 2; }
  socket_t socket() const override { return -1; }

 private:
  std::string input_;
  size_t offset_ = 0;
};

class InMemoryServer : public httplib::Server {
 public:
  InMemoryServer() {
    Post("/upload", [](const httplib::Request& req, httplib::Response& res) {
      try {
        for (const mriscan::UploadFile& file : mriscan::multipart_files(req, "files")) {
          // A name that passed is echoed in answers: it must be valid UTF-8 (the check is multipart_files').
          if (!mriscan::is_valid_utf8(file.filename)) std::abort();
          mriscan::decode_image(reinterpret_cast<const uint8_t*>(file.bytes.data()), file.bytes.size(),
                                {.max_pixels = 4'000'000, .max_side = 4096}, "'" + file.filename + "'");
        }
        (void)mriscan::form_value(req, "label");
      } catch (const std::exception&) {
      }
      res.status = 200;
    });
  }
  void serve(std::string request) {
    MemoryStream stream(std::move(request));
    bool closed = true;
    process_request(stream, true, closed, nullptr);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static InMemoryServer server;
  const std::string body(reinterpret_cast<const char*>(data), size);
  server.serve("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=FUZZ\r\n"
               "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  return 0;
}
