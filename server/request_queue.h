// The HTTP server's bounded request queue: a fixed pool of worker threads with at most `max_queued` connections
// waiting behind them. cpp-httplib 0.11's own ThreadPool queues without limit, so under overload it would
// accumulate connections (and their memory) until the process collapses; here a connection that finds the queue
// full is handed to a single "shedding" thread instead, which answers every request on it with 503 and closes.
//
// How shedding reaches the response: httplib gives a task queue opaque closures (read, route, write, close one
// connection), so the queue cannot write a response itself. It runs the closure on the shedding thread with a
// thread-local flag set; the server's pre-routing handler sees `is_shedding_thread()` and answers 503 before any
// handler or body read runs. If even the shedding thread's short queue is full, the closure runs inline on the
// accepting thread: accepting slows down and the kernel's listen backlog absorbs the burst (back-pressure).
//
// shutdown() (called by httplib::Server after stop()) drains: queued connections are still served, then the
// workers exit. What it is not: a scheduler with priorities; every request is equal.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "server/http.h"

namespace mriscan {

// Live counters, owned by the application so they outlive the queue httplib creates and destroys per listen().
struct RequestQueueCounters {
  std::atomic<int> active{0};     // connections being served
  std::atomic<int> queued{0};     // connections waiting for a worker
  std::atomic<int64_t> shed{0};   // connections answered with 503 because the queue was full
  int depth() const { return active.load() + queued.load(); }
};

class RequestQueue : public httplib::TaskQueue {
 public:
  RequestQueue(int threads, int max_queued, RequestQueueCounters& counters);
  ~RequestQueue() override;

  void enqueue(std::function<void()> fn) override;
  void shutdown() override;

  // True on the shedding thread while it processes an overflow connection.
  static bool is_shedding_thread();

 private:
  void worker_loop();
  void shedder_loop();

  const int max_queued_;
  std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable shed_ready_;
  std::deque<std::function<void()>> jobs_;
  std::deque<std::function<void()>> shed_jobs_;
  bool shutting_down_ = false;
  std::vector<std::thread> workers_;
  std::thread shedder_;
  RequestQueueCounters& counters_;
};

}  // namespace mriscan
