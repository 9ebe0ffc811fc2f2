// ThreadBudget: how concurrent predictions share the cores. Measured on 2 cores (bench/serving_modes.py, table in
// docs/serving.md): one batch-1 forward on both kernel threads takes about 6.8 ms (146 images/s), two concurrent
// forwards on one thread each about 12.4 ms each (163 images/s together), and no batch size beats the latter
// (the best, batch 8, gave 141 images/s). So a lone request gets every core (the lowest latency), and under load
// each request gets one core and as many run at once as there are cores (the highest throughput), never more
// (OpenMP teams on oversubscribed cores spin against each other).
//
// acquire(): a request that arrives when every thread is free and no one waits takes them all; any other waits
// until a thread is free and takes one. acquire_one(): one thread, waiting like the latter, for single-threaded
// work on a request's behalf (image decoding, server/routes_prediction.cpp), so that it counts against the cores
// too instead of running beside the predictions that hold them.
// The Lease sets the calling thread's kernel budget (engine/parallel.h set_thread_num_threads) for its lifetime
// and gives the threads back when destroyed.
// What it is not: a request queue (requests wait in the connection gate, server/transport/connection_gate.h); nor
// micro-batching, which this machine's measurements rule out.
#pragma once

#include <condition_variable>
#include <mutex>

namespace mriscan {

class ThreadBudget {
 public:
  explicit ThreadBudget(int threads);

  class Lease {
   public:
    Lease(ThreadBudget &budget, int threads);
    ~Lease();
    Lease(const Lease &) = delete;
    Lease &operator=(const Lease &) = delete;
    int threads() const { return threads_; }

   private:
    ThreadBudget &budget_;
    int threads_;
  };

  Lease acquire();
  Lease acquire_one();

  int threads() const { return total_; }
  int busy();     // threads held by leases
  int waiting();  // requests blocked in acquire()

 private:
  void release(int threads);
  Lease wait_for_one(std::unique_lock<std::mutex> &lock);

  const int total_;
  std::mutex mutex_;
  std::condition_variable freed_;
  int free_;
  int waiting_ = 0;
};

}  // namespace mriscan
