// The connection gate: where connections wait, so that worker threads only ever serve requests that have fully
// arrived (at least their head). It replaces cpp-httplib's thread-per-connection model, in which a keep-alive
// connection or a client sending one byte every few seconds held a worker for as long as it liked (143 such
// clients took the whole server down, /health included).
//
//   accept -> [gate: one epoll thread] --head complete and--> main queue  -> `workers` threads -> keep-alive? back
//               |   holds idle keep-alive connections,  body begun   probe queue -> 1 thread (/health, /ready)
//               |   heads still arriving (MSG_PEEK)                  (queue full: 503 + Retry-After, body discarded)
//               |   and bodies not yet begun (FIONREAD)
//               +-- deadline or limit: 408/411/413/415/416/431/501/400, then a lingering close
//
// Deadlines (steady clock): a request's head must arrive within `head_timeout_seconds` of the connection's
// arrival (of its first byte on a keep-alive connection) and in at most 32 pieces. A request with a body stays in
// the gate until the body has started (its first min(Content-Length, 8 KiB) bytes arrived, by the same deadline),
// so a client that declares a body and sends nothing never holds a worker. From the moment a worker takes it, the
// body must arrive at `body_min_bytes_per_second` on average, after a `body_grace_seconds` allowance (enforced by
// the worker's stream, server/transport/http_server.h, which also bounds writing the response); else 408 and the
// connection is closed. An idle keep-alive connection is closed after `idle_timeout_seconds`. Open connections are
// capped below the process's file limit. Every close that may leave unread bytes is a lingering close: shut down
// our side, read and discard what the client still sends for up to 2 s, then close, so the client receives our
// response instead of a TCP reset, and an unread body is never parsed as a next request.
// What it is not: an HTTP parser (server/transport/request_head.h) or a router (httplib routes what a worker serves).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/transport/request_head.h"

namespace mriscan {

struct GateOptions {
  int workers = 8;                 // threads serving requests other than probes
  int max_waiting_requests = 256;  // requests with a complete head waiting for a worker; beyond: 503
  int max_connections = 2048;      // open connections held by the gate and the workers; beyond: 503
  HeadLimits head_limits;
  double head_timeout_seconds = 10.0;
  double idle_timeout_seconds = 5.0;
  double body_min_bytes_per_second = 64.0 * 1024;  // and for writing responses (server/transport/http_server.h)
  double body_grace_seconds = 2.0;                 // the body's allowance before the rate counts
  std::vector<std::string> probe_paths = {"/health", "/ready"};
};

// Live counters, owned by the application so they outlive the gate (one per listen()).
struct GateCounters {
  std::atomic<int> active{0};       // requests being served
  std::atomic<int> queued{0};       // requests with a complete head waiting for a worker
  std::atomic<int> connections{0};  // open connections
  std::atomic<int64_t> shed{0};     // requests answered 503 because a queue or the connection limit was full
  std::atomic<int64_t> timed_out{0};  // 408s sent by the gate
  std::atomic<int> workers{0};        // threads serving requests other than probes
  std::atomic<int> workers_busy{0};   // of those, serving a request now
  std::atomic<int64_t> all_busy_since_ms{0};  // steady-clock ms when the last free worker was taken; 0: one is free
  int depth() const { return active.load() + queued.load(); }
  // How long every worker has been busy (0 while one is free): what /ready turns 503 on.
  double all_busy_seconds() const;
};

// A request whose head has arrived, handed to a worker. The socket is non-blocking.
struct PendingRequest {
  int fd = -1;
  RequestHead head;
  bool probe = false;  // /health or /ready, served by the probe thread
};

class ConnectionGate {
 public:
  // Serves one request; returns true to keep the connection for the next request (it comes back to the gate).
  using ServeFn = std::function<bool(const PendingRequest&)>;
  // The bytes of an error response the gate sends itself; `head` is null when the head did not parse.
  using RejectFn = std::function<std::string(int status, const std::string& message, const RequestHead* head)>;

  ConnectionGate(GateOptions options, GateCounters& counters, ServeFn serve, RejectFn reject);
  ~ConnectionGate();  // shutdown()

  void admit(int fd);  // a freshly accepted connection; the gate owns it from here
  // Stops accepting work: idle connections, heads still arriving and bodies that have not begun are closed;
  // requests already waiting, and those whose body has begun (up to max_waiting_requests), are served; returns
  // when every worker has finished.
  void shutdown();

 private:
  enum class State { kIdle, kHead, kBodyStart, kDraining };
  struct Connection {
    State state = State::kHead;
    std::chrono::steady_clock::time_point deadline;
    int peeks = 0;     // times the head (or, in kBodyStart, the body's start) was looked at while arriving
    RequestHead head;  // kBodyStart: the parsed head, waiting for the body's first bytes
  };

  void event_loop();
  void on_event(int fd);
  void on_readable(int fd, Connection& connection);
  void expire_deadlines(std::chrono::steady_clock::time_point now);
  void on_head(int fd, Connection& connection, const RequestHead& head);
  void dispatch(int fd, const RequestHead& head);
  void send_rejection(int fd, int status, const std::string& message, const RequestHead* head);
  void start_lingering_close(int fd);  // under mutex_
  void close_now(int fd);              // under mutex_
  void watch(int fd, Connection connection);  // under mutex_: (re)register with epoll
  void worker_loop(std::deque<PendingRequest>& queue);
  void count_busy_worker(int change);  // under mutex_
  void finished(int fd, bool keep_alive);

  GateOptions options_;
  GateCounters& counters_;
  ServeFn serve_;
  RejectFn reject_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: wakes the event loop for shutdown
  std::mutex mutex_;
  std::condition_variable work_ready_;
  std::map<int, Connection> connections_;  // held by the gate (not those with a worker)
  std::deque<PendingRequest> main_queue_, probe_queue_;
  int busy_main_workers_ = 0;
  std::vector<char> peek_buffer_;  // the event loop's, max_head_bytes
  bool stopping_ = false;
  std::thread loop_thread_;
  std::vector<std::thread> workers_;
};

}  // namespace mriscan
