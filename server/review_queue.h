// The review queue: answers a person should look at before anyone acts on them -- withheld as out of
// distribution, a prediction set of more than one class, or a confidence below `below_confidence` -- kept with the
// scan as the model saw it, for an admin to label (the scan then becomes a training upload for the next retrain)
// or discard.
//
// What is kept of a scan is its pixels only: the model's input image (S x S, RGB) as PNG, never the file that was
// sent (a DICOM file's attributes, a JPEG's EXIF), so nothing identifies a patient here or in the upload a label
// makes of it. Bounded: beyond `max_pending` pending reviews the oldest are dropped, and counted (`dropped`, also
// in /metrics). Offering a review never waits on the database: offer() queues it in memory and one writer thread
// encodes and inserts (a full in-memory queue drops and counts too). Deciding is one conditional update
// (`status = 'pending'`), so of two admins deciding at once on any replicas, one wins and the other gets a 409.
// What it is not: a labelling tool for whole datasets, or the audit trail (server/audit_log.h), which records
// every answer and no image.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/image_io.h"
#include "server/state/database.h"

namespace mriscan {

struct ReviewOptions {
  bool enabled = true;
  int max_pending = 500;
  double below_confidence = 0.6;  // answers less confident than this are reviewed
  size_t max_queued = 64;         // offered but not yet written (each holds an S x S image)
};

struct ReviewCandidate {
  std::string at, request_id;
  int64_t model_version = 0;
  std::string answer;  // "" when withheld
  bool out_of_distribution = false;
  nlohmann::json prediction_set;  // class names, or null
  double confidence = 0.0;
  std::string reason;
  Image image;  // (S, S, 3): the model's input
};

class ReviewQueue {
 public:
  ReviewQueue(Database& db, ReviewOptions options);
  ~ReviewQueue();  // stop()

  // Why an answer should be reviewed ("out of distribution", "prediction set of 2 classes", "confidence 0.41"),
  // or "" when it need not be.
  std::string reason_for(bool out_of_distribution, double confidence, std::optional<size_t> set_size) const;
  void offer(ReviewCandidate candidate);  // never blocks on the database

  // Reviews with `status` ("pending", "labelled", "discarded"), newest first, without images.
  std::vector<nlohmann::json> list(const std::string& status, int limit, std::optional<int64_t> before_id);
  std::optional<std::string> image_png(int64_t id);  // the stored scan; nullopt when unknown or decided
  // Marks a pending review decided ("labelled" with `label`, or "discarded"); its image leaves the queue with the
  // decision (a label's upload is made first). False if it was not pending (unknown, or decided already).
  bool decide(int64_t id, const std::string& status, const std::string& label);
  int64_t dropped();  // pending reviews dropped for the bound, and offers dropped from a full memory queue
  int64_t pending();
  void flush();  // writes what is offered now (tests)
  void stop();

 private:
  void writer_loop();
  void write_offered();

  Database& db_;
  ReviewOptions options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<ReviewCandidate> offered_;
  std::mutex writing_;  // held while writing, by the writer thread or flush()
  std::atomic<int64_t> dropped_in_memory_{0};
  bool stopping_ = false;
  std::thread writer_;
};

}  // namespace mriscan
