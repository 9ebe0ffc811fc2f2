// ExplainAdmission: how many HTTP workers Grad-CAM requests (/explain, /predict?gradcam=1) may hold at once.
//
// Why: explanations run one at a time (the taped network keeps what backward needs and is not reentrant,
// infer/classifier.h), and a request waiting for its turn holds an HTTP worker. Queued on a mutex, eight
// unauthenticated /explain requests held all eight workers, and /predict and every other route waited behind them
// in the connection gate. So one explanation runs, at most `max_waiting` others wait, and any request beyond that
// is refused at once (the route answers 503 with Retry-After) without waiting for anything.
//
// A Ticket is a place, taken on construction when one is free (never blocking) and given back on destruction;
// wait_turn() then blocks until no other admitted request runs. The place is taken before the image is decoded,
// so a refusal costs the server nothing but the request's bytes.
// What it is not: the core budget (server/thread_budget.h), which the running explanation still takes its lease
// from, or a queue with an order (waiters take the turn in whatever order they wake).
#pragma once

#include <condition_variable>
#include <mutex>

namespace mriscan {

class ExplainAdmission {
 public:
  explicit ExplainAdmission(int max_waiting);

  class Ticket {
   public:
    explicit Ticket(ExplainAdmission &admission);
    ~Ticket();
    Ticket(const Ticket &) = delete;
    Ticket &operator=(const Ticket &) = delete;

    bool admitted() const { return admitted_; }
    // Blocks until no other explanation runs; this one then runs until the ticket is destroyed. Only when admitted.
    void wait_turn();

   private:
    ExplainAdmission &admission_;
    bool admitted_ = false;
    bool running_ = false;
  };

  int max_waiting() const { return max_admitted_ - 1; }
  int admitted();  // places taken: the running explanation and those waiting for their turn

 private:
  std::mutex mutex_;
  std::condition_variable turn_free_;
  const int max_admitted_;  // one running + max_waiting
  int admitted_ = 0;
  bool running_ = false;
};

}  // namespace mriscan
