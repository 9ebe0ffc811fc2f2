// The cores shared by concurrent predictions; see thread_budget.h.
#include "server/thread_budget.h"

#include <algorithm>
#include <stdexcept>

#include "engine/parallel.h"

namespace mriscan {

ThreadBudget::ThreadBudget(int threads) : total_(threads), free_(threads) {
  if (threads < 1) throw std::invalid_argument("ThreadBudget: at least one thread");
}

// "Alone" is decided on arrival, not on waking: of two clients taking turns, the second always arrives while
// the first computes, so both then run on one core each (the faster mode) instead of alternating on two.
ThreadBudget::Lease ThreadBudget::acquire() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (free_ == total_ && waiting_ == 0) {  // alone: every core
    free_ = 0;
    lock.unlock();
    return Lease(*this, total_);
  }
  return wait_for_one(lock);  // others are computing or waiting: one core each
}

ThreadBudget::Lease ThreadBudget::acquire_one() {
  std::unique_lock<std::mutex> lock(mutex_);
  return wait_for_one(lock);
}

ThreadBudget::Lease ThreadBudget::wait_for_one(std::unique_lock<std::mutex> &lock) {
  ++waiting_;
  freed_.wait(lock, [this] { return free_ > 0; });
  --waiting_;
  --free_;
  lock.unlock();
  return Lease(*this, 1);
}

void ThreadBudget::release(int threads) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    free_ += threads;
  }
  freed_.notify_all();
}

int ThreadBudget::busy() {
  std::lock_guard<std::mutex> lock(mutex_);
  return total_ - free_;
}

int ThreadBudget::waiting() {
  std::lock_guard<std::mutex> lock(mutex_);
  return waiting_;
}

ThreadBudget::Lease::Lease(ThreadBudget &budget, int threads) : budget_(budget), threads_(threads) {
  set_thread_num_threads(threads);
}

ThreadBudget::Lease::~Lease() {
  set_thread_num_threads(0);  // back to the process-wide setting (workers have no budget of their own)
  budget_.release(threads_);
}

}  // namespace mriscan
