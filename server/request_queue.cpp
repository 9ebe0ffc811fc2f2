// Bounded worker pool with load shedding; see request_queue.h for the design.
#include "server/request_queue.h"

namespace mriscan {
namespace {

thread_local bool t_shedding = false;
constexpr size_t kMaxShedQueue = 64;  // overflow connections waiting for their 503

}  // namespace

bool RequestQueue::is_shedding_thread() { return t_shedding; }

RequestQueue::RequestQueue(int threads, int max_queued, RequestQueueCounters& counters)
    : max_queued_(max_queued < 0 ? 0 : max_queued), counters_(counters) {
  if (threads < 1) threads = 1;
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
  shedder_ = std::thread([this] { shedder_loop(); });
}

RequestQueue::~RequestQueue() { shutdown(); }

void RequestQueue::enqueue(std::function<void()> fn) {
  std::unique_lock<std::mutex> lock(mutex_);
  // A connection may wait only if a worker is free or the waiting line is shorter than max_queued.
  const int idle_workers = static_cast<int>(workers_.size()) - counters_.active.load();
  if (static_cast<int>(jobs_.size()) < max_queued_ + idle_workers) {
    jobs_.push_back(std::move(fn));
    counters_.queued = static_cast<int>(jobs_.size());
    lock.unlock();
    work_ready_.notify_one();
    return;
  }
  ++counters_.shed;
  if (shed_jobs_.size() < kMaxShedQueue) {
    shed_jobs_.push_back(std::move(fn));
    lock.unlock();
    shed_ready_.notify_one();
    return;
  }
  lock.unlock();
  // Back-pressure: answer 503 on the accepting thread itself.
  t_shedding = true;
  fn();
  t_shedding = false;
}

void RequestQueue::worker_loop() {
  for (;;) {
    std::function<void()> fn;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_ready_.wait(lock, [&] { return shutting_down_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // shutting down and drained
      fn = std::move(jobs_.front());
      jobs_.pop_front();
      counters_.queued = static_cast<int>(jobs_.size());
      ++counters_.active;
    }
    fn();
    --counters_.active;
  }
}

void RequestQueue::shedder_loop() {
  t_shedding = true;
  for (;;) {
    std::function<void()> fn;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      shed_ready_.wait(lock, [&] { return shutting_down_ || !shed_jobs_.empty(); });
      if (shed_jobs_.empty()) return;
      fn = std::move(shed_jobs_.front());
      shed_jobs_.pop_front();
    }
    fn();
  }
}

void RequestQueue::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (shutting_down_ && workers_.empty()) return;
    shutting_down_ = true;
  }
  work_ready_.notify_all();
  shed_ready_.notify_all();
  for (auto& worker : workers_) worker.join();
  workers_.clear();
  if (shedder_.joinable()) shedder_.join();
}

}  // namespace mriscan
