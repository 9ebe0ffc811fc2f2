// httplib::Server served through the connection gate; see http_server.h.
#include "server/transport/http_server.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace mriscan {
namespace {

thread_local const RequestStream* t_current_stream = nullptr;

// httplib's accept loop calls enqueue(fn) for every connection, where fn calls process_and_close_socket (ours:
// a hand-off to the gate, which returns at once), so it runs inline. shutdown() is httplib's "the accept loop
// has ended": the listener is forgotten (see forget_listener), then the gate serves what is waiting and joins
// its threads before listen() returns.
class GateTaskQueue : public httplib::TaskQueue {
 public:
  GateTaskQueue(ConnectionGate& gate, std::function<void()> forget_listener)
      : gate_(gate), forget_listener_(std::move(forget_listener)) {}
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override {
    forget_listener_();
    gate_.shutdown();
  }

 private:
  ConnectionGate& gate_;
  std::function<void()> forget_listener_;
};

void address_of(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  const int rc = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length)
                      : ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ip.clear();
  port = 0;
  if (rc != 0) return;
  char text[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
    ::inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
    port = ntohs(v4->sin_port);
  } else if (address.ss_family == AF_INET6) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
    ::inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
    port = ntohs(v6->sin6_port);
  }
  ip = text;
}

}  // namespace

RequestStream::RequestStream(int fd, size_t request_bytes, Clock::duration read_grace,
                             Clock::duration write_allowance, double min_bytes_per_second)
    : fd_(fd), request_bytes_(request_bytes), read_start_(Clock::now()), read_grace_(read_grace),
      write_allowance_(write_allowance), min_bytes_per_second_(min_bytes_per_second) {}

// The minimum average rate from the first byte, after the grace: a client cannot stall once and then trickle.
RequestStream::Clock::time_point RequestStream::read_deadline() const {
  return read_start_ + read_grace_ +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(consumed_ / min_bytes_per_second_));
}

const RequestStream* RequestStream::current() { return t_current_stream; }

bool RequestStream::wait_until(short events, Clock::time_point deadline) const {
  for (;;) {
    const auto left = deadline - Clock::now();
    if (left <= Clock::duration::zero()) return false;
    // Rounded up: a poll() that ends a fraction of a millisecond early must not look like the deadline.
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    pollfd entry{fd_, events, 0};
    const int rc = ::poll(&entry, 1, static_cast<int>(std::min<int64_t>(ms, 60'000)));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return false;
  }
}

bool RequestStream::is_readable() const {
  return buffer_begin_ < buffer_end_ || wait_until(POLLIN, read_deadline());
}

bool RequestStream::is_writable() const {
  return wait_until(POLLOUT, write_deadline_ == Clock::time_point{} ? Clock::now() + write_allowance_
                                                                       : write_deadline_);
}

// One recv() that waits for data until the request's deadline: > 0 bytes, 0 at the end of the stream, -1 on an
// error or the deadline (then timed_out_ is set).
ssize_t RequestStream::receive(char* into, size_t size) {
  for (;;) {
    const ssize_t n = ::recv(fd_, into, size, 0);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    if (!wait_until(POLLIN, read_deadline())) {
      timed_out_ = Clock::now() >= read_deadline();
      return -1;
    }
  }
}

ssize_t RequestStream::read(char* ptr, size_t size) {
  // Never past this request's bytes: what follows belongs to the gate.
  size = std::min(size, request_bytes_ - consumed_);
  if (size == 0) return 0;
  if (buffer_begin_ == buffer_end_ && size < sizeof(buffer_)) {
    // Refill, but only with bytes of this request.
    const ssize_t n = receive(buffer_, std::min(sizeof(buffer_), request_bytes_ - consumed_));
    if (n <= 0) return n;
    buffer_begin_ = 0;
    buffer_end_ = static_cast<size_t>(n);
  }
  if (buffer_begin_ < buffer_end_) {
    const size_t n = std::min(size, buffer_end_ - buffer_begin_);
    std::memcpy(ptr, buffer_ + buffer_begin_, n);
    buffer_begin_ += n;
    consumed_ += n;
    return static_cast<ssize_t>(n);
  }
  const ssize_t n = receive(ptr, size);  // large reads (bodies) go straight into httplib's buffer
  if (n > 0) consumed_ += static_cast<size_t>(n);
  return n;
}

ssize_t RequestStream::write(const char* ptr, size_t size) {
  if (write_deadline_ == Clock::time_point{}) write_deadline_ = Clock::now() + write_allowance_;
  write_deadline_ += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(size / min_bytes_per_second_));
  size_t written = 0;
  while (written < size) {
    const ssize_t n = ::send(fd_, ptr + written, size - written, MSG_NOSIGNAL);
    if (n > 0) {
      written += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait_until(POLLOUT, write_deadline_)) continue;
    return -1;  // the client read too slowly for the response's deadline, or went away
  }
  return static_cast<ssize_t>(size);
}

void RequestStream::get_remote_ip_and_port(std::string& ip, int& port) const { address_of(fd_, true, ip, port); }
void RequestStream::get_local_ip_and_port(std::string& ip, int& port) const { address_of(fd_, false, ip, port); }

HttpServer::HttpServer(GateOptions options, GateCounters& counters, ConnectionGate::RejectFn reject)
    : options_(std::move(options)), counters_(counters), reject_(std::move(reject)) {
  set_payload_max_length(options_.head_limits.max_body_bytes);
  new_task_queue = [this] {
    gate_ = std::make_unique<ConnectionGate>(options_, counters_, [this](const PendingRequest& r) { return serve(r); },
                                             reject_);
    return new GateTaskQueue(*gate_, [this] { forget_listener(); });
  };
  set_socket_options([this](socket_t sock) {
    httplib::default_socket_options(sock);
    listen_socket_ = sock;
  });
}

// httplib listens with a backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG, compiled into Debian's libcpp-httplib). When
// predictions keep both cores busy, its accept thread is not scheduled for milliseconds at a time, and a burst
// of new connections (nginx opening its upstream pool) overflowed that queue: dropped SYNs, retried after 1 s,
// and nginx's 2 s connect timeout answering 504. listen() again on a listening socket only resizes its queue.
int HttpServer::bind_with_full_backlog(const std::string& host, int port) {
  const int bound = port == 0 ? bind_to_any_port(host) : (bind_to_port(host, port) ? port : -1);
  if (bound > 0 && ::listen(listen_socket_, SOMAXCONN) != 0) return -1;
  return bound;
}

// httplib 0.11 closes the listening socket after an accept error but keeps its number in svr_sock_, and stop()
// would close that number again, by then perhaps a database or client descriptor.
void HttpServer::forget_listener() { svr_sock_ = INVALID_SOCKET; }

// Unlike stop(), also when the accept loop is not running (yet): a listener bound but not yet listening is closed,
// and a listen() that starts afterwards returns at once (its loop runs while svr_sock_ is valid).
void HttpServer::close_listener() {
  const socket_t sock = svr_sock_.exchange(INVALID_SOCKET);
  if (sock == INVALID_SOCKET) return;
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
}

bool HttpServer::process_and_close_socket(socket_t sock) {
  gate_->admit(sock);
  return true;
}

bool HttpServer::serve(const PendingRequest& request) {
  // Probes answer a few hundred bytes: a client that does not read them loses its connection after 1 s.
  const auto write_allowance = request.probe ? std::chrono::seconds(1) : std::chrono::seconds(10);
  const auto read_grace = std::chrono::duration_cast<RequestStream::Clock::duration>(
      std::chrono::duration<double>(options_.body_grace_seconds));
  RequestStream stream(request.fd, request.head.request_bytes(), read_grace, write_allowance,
                       options_.body_min_bytes_per_second);
  t_current_stream = &stream;
  bool client_closes = request.head.wants_close;
  const bool written = process_request(stream, /*close_connection=*/client_closes, client_closes, nullptr);
  t_current_stream = nullptr;
  // Keep the connection only if the response went out and exactly this request's bytes were consumed.
  return written && !client_closes && stream.consumed_whole_request() && !stream.timed_out();
}

}  // namespace mriscan
