// A one-shot gate between threads: wait() blocks until release() has been called (once is enough, forever after).
// Tests use it to hold a runner at a chosen point while they act, e.g. as another replica would.
// What it is not: a counter or a barrier (std::latch needs a count known in advance; these gates have none).
#pragma once

#include <condition_variable>
#include <mutex>

namespace mriscan {

struct Latch {
  std::mutex mutex;
  std::condition_variable changed;
  bool open = false;
  void release() {
    std::lock_guard<std::mutex> lock(mutex);
    open = true;
    changed.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> lock(mutex);
    changed.wait(lock, [&] { return open; });
  }
};

}  // namespace mriscan
