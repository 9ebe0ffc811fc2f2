// cpp-httplib's Server with its connection handling replaced by the connection gate (server/transport/connection_gate.h):
// httplib still accepts, parses, routes and writes responses (Server::process_request), but a connection goes to
// the gate instead of a thread of its own, and a worker serves exactly one request that has arrived, reading it
// through a RequestStream that
//   * never reads past the request's own bytes (head + Content-Length), so the next request on a keep-alive
//     connection stays in the kernel for the gate to check, and an unread body is noticed (the connection is
//     then closed, never parsed as a next request);
//   * fails reads once the body falls behind its minimum average rate: having consumed k bytes, the next must
//     arrive by start + grace + k / rate (the error handler then answers 408 and the connection closes);
//   * fails writes once the response's deadline has passed: `write_allowance` from the first byte written, plus
//     the time to send it at the gate's minimum rate (64 KiB/s), so a client that reads one byte every few
//     seconds cannot hold a worker either.
// What it is not: a second HTTP implementation; everything above the socket is httplib's.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "server/transport/http.h"

#include "server/transport/connection_gate.h"

namespace mriscan {

class RequestStream : public httplib::Stream {
 public:
  using Clock = std::chrono::steady_clock;
  RequestStream(int fd, size_t request_bytes, Clock::duration read_grace, Clock::duration write_allowance,
                double min_bytes_per_second);

  bool is_readable() const override;
  bool is_writable() const override;
  ssize_t read(char* ptr, size_t size) override;
  ssize_t write(const char* ptr, size_t size) override;
  void get_remote_ip_and_port(std::string& ip, int& port) const override;
  void get_local_ip_and_port(std::string& ip, int& port) const override;
  socket_t socket() const override { return fd_; }

  bool consumed_whole_request() const { return consumed_ == request_bytes_; }
  bool timed_out() const { return timed_out_; }
  // The stream of the request the calling worker thread is serving (null elsewhere): how the error handler,
  // which httplib gives only the request and response, learns that a read failed on the deadline.
  static const RequestStream* current();

 private:
  Clock::time_point read_deadline() const;  // for the next byte of the request
  // Polls until `events` or `deadline` (rounding up, and again after an early wake-up); false at the deadline.
  bool wait_until(short events, Clock::time_point deadline) const;
  ssize_t receive(char* into, size_t size);

  int fd_;
  size_t request_bytes_;
  size_t consumed_ = 0;  // bytes handed to httplib
  Clock::time_point read_start_;  // when the worker took the request
  Clock::duration read_grace_;
  Clock::duration write_allowance_;
  double min_bytes_per_second_;
  Clock::time_point write_deadline_{};  // set by the first write
  bool timed_out_ = false;
  char buffer_[4096];  // httplib reads the head one byte at a time
  size_t buffer_begin_ = 0, buffer_end_ = 0;
};

class HttpServer : public httplib::Server {
 public:
  HttpServer(GateOptions options, GateCounters& counters, ConnectionGate::RejectFn reject);

  // bind_to_port / bind_to_any_port (port 0) with the listen queue at SOMAXCONN; returns the port, -1 on failure.
  int bind_with_full_backlog(const std::string& host, int port);
  // Closes the listening socket, whether or not listen() runs: it returns (or will return at once) true, after
  // the gate has served the requests already waiting. Safe from any thread, any number of times.
  void close_listener();

 private:
  bool process_and_close_socket(socket_t sock) override;  // hands the connection to the gate
  bool serve(const PendingRequest& request);
  void forget_listener();  // the accept loop has ended: its socket is closed or being closed

  GateOptions options_;
  GateCounters& counters_;
  socket_t listen_socket_ = -1;  // captured by the socket-options hook when bind creates it
  ConnectionGate::RejectFn reject_;
  std::unique_ptr<ConnectionGate> gate_;  // one per listen(); created by new_task_queue
};

}  // namespace mriscan
