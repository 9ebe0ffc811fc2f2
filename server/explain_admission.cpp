// The bound on Grad-CAM requests holding HTTP workers; see explain_admission.h.
#include "server/explain_admission.h"

#include <stdexcept>

namespace mriscan {

ExplainAdmission::ExplainAdmission(int max_waiting) : max_admitted_(max_waiting + 1) {
  if (max_waiting < 0) throw std::invalid_argument("ExplainAdmission: max_waiting must be >= 0");
}

int ExplainAdmission::admitted() {
  std::lock_guard<std::mutex> lock(mutex_);
  return admitted_;
}

ExplainAdmission::Ticket::Ticket(ExplainAdmission &admission) : admission_(admission) {
  std::lock_guard<std::mutex> lock(admission_.mutex_);
  if (admission_.admitted_ >= admission_.max_admitted_) return;
  ++admission_.admitted_;
  admitted_ = true;
}

void ExplainAdmission::Ticket::wait_turn() {
  if (!admitted_) throw std::logic_error("ExplainAdmission: wait_turn without a place");
  std::unique_lock<std::mutex> lock(admission_.mutex_);
  admission_.turn_free_.wait(lock, [this] { return !admission_.running_; });
  admission_.running_ = running_ = true;
}

ExplainAdmission::Ticket::~Ticket() {
  if (!admitted_) return;
  {
    std::lock_guard<std::mutex> lock(admission_.mutex_);
    --admission_.admitted_;
    if (running_) admission_.running_ = false;
  }
  if (running_) admission_.turn_free_.notify_one();
}

}  // namespace mriscan
