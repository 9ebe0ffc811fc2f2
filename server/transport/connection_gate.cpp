// The epoll loop, the two request queues and their workers; see connection_gate.h for the design.
#include "server/transport/connection_gate.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <stdexcept>

namespace mriscan {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr auto kSweepInterval = std::chrono::milliseconds(100);
constexpr int kMaxWaitingProbes = 64;
constexpr int kMaxHeadPieces = 32;             // a real client sends its head in one to three segments
constexpr size_t kMaxDrainPerEvent = 256 << 10;  // the event loop must not stay with one connection
constexpr int kReservedFileDescriptors = 64;     // for the database, model files and uploads
constexpr uint64_t kBodyStartBytes = 8 << 10;    // a body has started once this much (or all of it) has arrived

int64_t steady_ms(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// Bytes in the socket's receive queue (FIONREAD: nothing is copied); an error counts as everything, so that the
// worker's stream finds it out.
uint64_t bytes_waiting(int fd) {
  int available = 0;
  return ::ioctl(fd, FIONREAD, &available) == 0 ? static_cast<uint64_t>(available) : UINT64_MAX;
}

// Whether the head and the start of the body (min(Content-Length, kBodyStartBytes)) have arrived.
bool body_started(int fd, const RequestHead& head) {
  return bytes_waiting(fd) >= head.head_bytes + std::min(head.content_length, kBodyStartBytes);
}

// Raises the soft limit on open files to the hard one; returns what is left for connections.
int connection_capacity(int wanted) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return wanted;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
    ::getrlimit(RLIMIT_NOFILE, &limit);
  }
  const auto available = static_cast<int64_t>(limit.rlim_cur) - kReservedFileDescriptors;
  return static_cast<int>(std::max<int64_t>(16, std::min<int64_t>(wanted, available)));
}

Clock::time_point after(double seconds) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

void send_all_nonblocking(int fd, const std::string& bytes) {
  // A fresh connection's send buffer holds far more than an error response; what does not fit is dropped.
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
}

}  // namespace

double GateCounters::all_busy_seconds() const {
  const int64_t since = all_busy_since_ms.load();
  return since == 0 ? 0.0 : (steady_ms(Clock::now()) - since) / 1000.0;
}

ConnectionGate::ConnectionGate(GateOptions options, GateCounters& counters, ServeFn serve, RejectFn reject)
    : options_(std::move(options)), counters_(counters), serve_(std::move(serve)), reject_(std::move(reject)) {
  options_.max_connections = connection_capacity(options_.max_connections);
  counters_.workers = std::max(1, options_.workers);
  peek_buffer_.resize(options_.head_limits.max_head_bytes);
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) throw std::runtime_error("serve: cannot create the connection gate's epoll");
  epoll_event wake{};
  wake.events = EPOLLIN;
  wake.data.fd = wake_fd_;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &wake);
  loop_thread_ = std::thread([this] { event_loop(); });
  for (int i = 0; i < counters_.workers.load(); ++i)
    workers_.emplace_back([this] { worker_loop(main_queue_); });
  workers_.emplace_back([this] { worker_loop(probe_queue_); });
}

ConnectionGate::~ConnectionGate() {
  shutdown();
  ::close(wake_fd_);
  ::close(epoll_fd_);
}

void ConnectionGate::admit(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  std::lock_guard<std::mutex> lock(mutex_);
  ++counters_.connections;
  if (stopping_) {
    close_now(fd);
    return;
  }
  if (counters_.connections.load() > options_.max_connections) {
    ++counters_.shed;
    send_rejection(fd, 503, "server busy: too many open connections, retry shortly", nullptr);
    return;
  }
  watch(fd, {State::kHead, after(options_.head_timeout_seconds), 0, {}});
}

void ConnectionGate::watch(int fd, Connection connection) {
  connections_[fd] = connection;
  // Edge-triggered: a head still arriving is only peeked, so a level-triggered watch would fire continuously.
  epoll_event event{};
  event.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
  event.data.fd = fd;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &event) != 0 && errno == ENOENT)
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event);
}

void ConnectionGate::close_now(int fd) {
  connections_.erase(fd);
  ::close(fd);  // also removes it from the epoll set
  --counters_.connections;
}

void ConnectionGate::start_lingering_close(int fd) {
  ::shutdown(fd, SHUT_WR);  // the client sees the end of our response
  watch(fd, {State::kDraining, Clock::now() + kLingerTime, 0, {}});
}

void ConnectionGate::send_rejection(int fd, int status, const std::string& message, const RequestHead* head) {
  send_all_nonblocking(fd, reject_(status, message, head));
  start_lingering_close(fd);
}

void ConnectionGate::event_loop() {
  std::vector<epoll_event> events(128);
  auto last_sweep = Clock::now();
  for (;;) {
    const int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()),
                               static_cast<int>(kSweepInterval.count()));
    std::lock_guard<std::mutex> lock(mutex_);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == wake_fd_) return;  // shutdown() has served the queues; the remaining connections are closed there
      on_event(fd);
    }
    const auto now = Clock::now();
    if (now - last_sweep >= kSweepInterval) {
      expire_deadlines(now);
      last_sweep = now;
    }
  }
}

void ConnectionGate::on_event(int fd) {
  auto found = connections_.find(fd);
  if (found == connections_.end()) return;  // with a worker, or already closed
  try {
    on_readable(fd, found->second);
  } catch (const std::exception&) {
    if (connections_.count(fd)) close_now(fd);  // out of memory while answering: drop this connection only
  }
}

void ConnectionGate::on_readable(int fd, Connection& connection) {
  if (connection.state == State::kDraining) {
    // Bounded by time (kLingerTime), not bytes: a client that sends a body over the limit before it reads
    // must still get to read our 413.
    char sink[16 * 1024];
    for (size_t drained = 0; drained < kMaxDrainPerEvent;) {
      const ssize_t n = ::recv(fd, sink, sizeof(sink), 0);
      if (n > 0) {
        drained += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      close_now(fd);  // end of stream or an error
      return;
    }
    if (Clock::now() >= connection.deadline) close_now(fd);
    return;  // more may be pending: the next segment's event (or the sweep) comes back here
  }
  if (connection.state == State::kBodyStart) {
    // A client trickling its body in tiny pieces goes to a worker anyway, whose stream then holds it to the rate.
    if (body_started(fd, connection.head) || ++connection.peeks > kMaxHeadPieces) dispatch(fd, connection.head);
    return;
  }
  const ssize_t n = ::recv(fd, peek_buffer_.data(), peek_buffer_.size(), MSG_PEEK);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
  if (n <= 0) {
    close_now(fd);  // the client closed (or reset) the connection between requests
    return;
  }
  if (connection.state == State::kIdle) connection = {State::kHead, after(options_.head_timeout_seconds), 0, {}};
  RequestHead head;
  HeadRejection rejection;
  const std::string_view peeked(peek_buffer_.data(), static_cast<size_t>(n));
  switch (parse_request_head(peeked, options_.head_limits, head, rejection)) {
    case HeadParse::kIncomplete:
      // Each piece re-reads the head so far: bound the pieces, so the work per head stays linear in its size.
      if (++connection.peeks > kMaxHeadPieces)
        send_rejection(fd, 400, "request head sent in more than " + std::to_string(kMaxHeadPieces) + " pieces",
                       nullptr);
      return;
    case HeadParse::kRejected: send_rejection(fd, rejection.status, rejection.message, &head); return;
    case HeadParse::kComplete: on_head(fd, connection, head); return;
  }
}

// A complete head: to a worker if there is no body or it has started, or if the client waits for our 100 Continue
// before sending it (httplib's worker sends that); else wait for the body here, by the head's deadline.
void ConnectionGate::on_head(int fd, Connection& connection, const RequestHead& head) {
  if (head.expects_continue || body_started(fd, head)) {
    dispatch(fd, head);
    return;
  }
  connection.state = State::kBodyStart;
  connection.peeks = 0;
  connection.head = head;
}

void ConnectionGate::dispatch(int fd, const RequestHead& head) {
  const bool probe = (head.method == "GET" || head.method == "HEAD") &&
                     std::find(options_.probe_paths.begin(), options_.probe_paths.end(), head.path) !=
                         options_.probe_paths.end();
  std::deque<PendingRequest>& queue = probe ? probe_queue_ : main_queue_;
  // A request may wait if a worker is idle or fewer than the bound are waiting; probes have their own bound.
  const int idle_workers = std::max(0, options_.workers - busy_main_workers_);
  const int bound = probe ? kMaxWaitingProbes : options_.max_waiting_requests + idle_workers;
  if (static_cast<int>(queue.size()) >= bound) {
    ++counters_.shed;
    send_rejection(fd, 503, "server busy: the request queue is full, retry shortly", &head);
    return;
  }
  queue.push_back({fd, head, probe});  // first: if it throws, the connection is still the gate's
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  connections_.erase(fd);
  counters_.queued = static_cast<int>(main_queue_.size() + probe_queue_.size());
  work_ready_.notify_all();
}

void ConnectionGate::expire_deadlines(Clock::time_point now) {
  std::vector<std::pair<int, State>> expired;
  for (const auto& [fd, connection] : connections_)
    if (connection.deadline <= now) expired.emplace_back(fd, connection.state);
  for (const auto& [fd, state] : expired) {
    const std::string seconds = std::to_string(static_cast<int>(options_.head_timeout_seconds));
    if (state == State::kHead) {
      ++counters_.timed_out;
      send_rejection(fd, 408, "request head not received within " + seconds + " s", nullptr);
    } else if (state == State::kBodyStart) {
      ++counters_.timed_out;
      const RequestHead head = connections_[fd].head;  // a copy: send_rejection replaces the entry
      send_rejection(fd, 408, "request body not started within " + seconds + " s", &head);
    } else {
      close_now(fd);  // idle keep-alive connection, or a lingering close that is over
    }
  }
}

void ConnectionGate::worker_loop(std::deque<PendingRequest>& queue) {
  for (;;) {
    PendingRequest request;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_ready_.wait(lock, [&] { return stopping_ || !queue.empty(); });
      if (queue.empty()) return;  // stopping, and everything that was waiting has been served
      request = std::move(queue.front());
      queue.pop_front();
      counters_.queued = static_cast<int>(main_queue_.size() + probe_queue_.size());
      ++counters_.active;
      if (!request.probe) count_busy_worker(+1);
    }
    bool keep_alive = false;
    try {
      keep_alive = serve_(request);
    } catch (...) {
      keep_alive = false;  // the server answers errors itself; this only guards the thread
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --counters_.active;
      if (!request.probe) count_busy_worker(-1);
    }
    try {
      finished(request.fd, keep_alive);
    } catch (const std::exception&) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (connections_.count(request.fd)) {
        close_now(request.fd);
      } else {
        ::close(request.fd);
        --counters_.connections;
      }
    }
  }
}

void ConnectionGate::count_busy_worker(int change) {
  busy_main_workers_ += change;
  counters_.workers_busy = busy_main_workers_;
  if (busy_main_workers_ < counters_.workers.load()) counters_.all_busy_since_ms = 0;
  else if (change > 0) counters_.all_busy_since_ms = steady_ms(Clock::now());
}

void ConnectionGate::finished(int fd, bool keep_alive) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (keep_alive && !stopping_) watch(fd, {State::kIdle, after(options_.idle_timeout_seconds), 0, {}});
  else start_lingering_close(fd);
}

void ConnectionGate::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    // Connections without a complete request are closed; requests already queued are still served, and so are
    // those whose body had begun to arrive (a worker's stream holds them to the minimum rate), up to the queue's
    // bound: a flood of silent clients must not stretch the drain past an orchestrator's grace period.
    std::vector<int> closing, handed;
    for (auto& [fd, connection] : connections_) {
      if (connection.state == State::kDraining) continue;
      const bool begun = connection.state == State::kBodyStart && bytes_waiting(fd) > connection.head.head_bytes &&
                         static_cast<int>(main_queue_.size()) < options_.max_waiting_requests;
      if (!begun) {
        closing.push_back(fd);
        continue;
      }
      main_queue_.push_back({fd, connection.head, false});
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
      handed.push_back(fd);
    }
    for (int fd : closing) close_now(fd);
    for (int fd : handed) connections_.erase(fd);
    counters_.queued = static_cast<int>(main_queue_.size() + probe_queue_.size());
  }
  work_ready_.notify_all();
  for (auto& worker : workers_) worker.join();
  workers_.clear();
  const uint64_t one = 1;
  if (::write(wake_fd_, &one, sizeof(one)) < 0) { /* the loop also wakes every 100 ms */ }
  if (loop_thread_.joinable()) loop_thread_.join();
  std::lock_guard<std::mutex> lock(mutex_);
  while (!connections_.empty()) close_now(connections_.begin()->first);
}

}  // namespace mriscan
