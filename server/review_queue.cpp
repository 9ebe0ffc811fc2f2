// The review queue's table, writer thread and decisions; see review_queue.h.
#include "server/review_queue.h"

#include <cstdio>

namespace mriscan {

ReviewQueue::ReviewQueue(Database& db, ReviewOptions options) : db_(db), options_(options) {
  db_.transaction([](Database::Session& session) {
    const SqlDialect dialect = session.dialect();
    session.exec("CREATE TABLE IF NOT EXISTS reviews (id " + sql_auto_id(dialect) +
                 ", at TEXT NOT NULL, request_id TEXT NOT NULL, model_version INTEGER NOT NULL, answer TEXT NOT NULL,"
                 " out_of_distribution INTEGER NOT NULL, prediction_set TEXT, confidence DOUBLE PRECISION NOT NULL,"
                 " reason TEXT NOT NULL, image " + sql_blob_type(dialect) + ", status TEXT NOT NULL, label TEXT,"
                 " decided_at TEXT)");
    session.exec("CREATE INDEX IF NOT EXISTS reviews_status ON reviews (status, id)");
    // One row: how many pending reviews the bound has dropped (every replica adds to it).
    session.exec("CREATE TABLE IF NOT EXISTS review_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)");
    session.exec("INSERT INTO review_counters (name, value) VALUES ('dropped', 0) ON CONFLICT DO NOTHING");
  });
  if (options_.enabled) writer_ = std::thread([this] { writer_loop(); });
}

ReviewQueue::~ReviewQueue() { stop(); }

std::string ReviewQueue::reason_for(bool out_of_distribution, double confidence,
                                    std::optional<size_t> set_size) const {
  if (!options_.enabled) return "";
  if (out_of_distribution) return "out of distribution";
  if (set_size && *set_size > 1) return "prediction set of " + std::to_string(*set_size) + " classes";
  if (confidence < options_.below_confidence) {
    char text[48];
    std::snprintf(text, sizeof text, "confidence %.2f below %.2f", confidence, options_.below_confidence);
    return text;
  }
  return "";
}

void ReviewQueue::offer(ReviewCandidate candidate) {
  if (!options_.enabled) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (offered_.size() >= options_.max_queued) {
      offered_.pop_front();
      ++dropped_in_memory_;
    }
    offered_.push_back(std::move(candidate));
  }
  wake_.notify_one();
}

void ReviewQueue::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
}

void ReviewQueue::writer_loop() {
  for (;;) {
    bool stopping = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !offered_.empty(); });
      stopping = stopping_;
    }
    write_offered();
    if (stopping) return;
  }
}

void ReviewQueue::flush() { write_offered(); }

// Each offered review in its own transaction (PNG encoded outside it), then the bound applied in the same one.
void ReviewQueue::write_offered() {
  std::lock_guard<std::mutex> writing(writing_);  // flush() returns only once what was offered before is written
  for (;;) {
    std::optional<ReviewCandidate> next;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (offered_.empty()) return;
      next.emplace(std::move(offered_.front()));
      offered_.pop_front();
    }
    const ReviewCandidate& c = *next;
    const std::vector<uint8_t> png = encode_png(c.image);
    try {
      db_.transaction([&](Database::Session& session) {
        session.exec("INSERT INTO reviews (at, request_id, model_version, answer, out_of_distribution, prediction_set,"
                     " confidence, reason, image, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
                     {c.at, c.request_id, c.model_version, c.answer, int64_t(c.out_of_distribution),
                      c.prediction_set.is_null() ? SqlValue(nullptr) : SqlValue(c.prediction_set.dump()),
                      c.confidence, c.reason, SqlBlob{std::string(png.begin(), png.end())}});
        // The bound: the pending reviews older than the max_pending newest are dropped (their images with them),
        // and counted.
        auto oldest_kept = session.query("SELECT id FROM reviews WHERE status = 'pending' ORDER BY id DESC"
                                         " LIMIT 1 OFFSET ?", {int64_t{options_.max_pending} - 1});
        if (oldest_kept.empty()) return;
        session.exec("DELETE FROM reviews WHERE status = 'pending' AND id < ?", {oldest_kept[0].integer("id")});
        if (session.changes() > 0)
          session.exec("UPDATE review_counters SET value = value + ? WHERE name = 'dropped'", {session.changes()});
      });
    } catch (const std::exception& error) {
      std::fprintf(stderr, "mriscan serve: review queue: a review was not stored: %s\n", error.what());
      ++dropped_in_memory_;
    }
  }
}

std::vector<nlohmann::json> ReviewQueue::list(const std::string& status, int limit, std::optional<int64_t> before_id) {
  std::vector<SqlValue> params = {status};
  std::string where = "status = ?";
  if (before_id) where += " AND id < ?", params.push_back(*before_id);
  params.push_back(int64_t{limit});
  std::vector<nlohmann::json> reviews;
  auto optional_text = [](const SqlRow& row, const char* name) {
    return row.is_null(name) ? nlohmann::json() : nlohmann::json(row.text(name));
  };
  for (const SqlRow& row : db_.query("SELECT id, at, request_id, model_version, answer, out_of_distribution,"
                                     " prediction_set, confidence, reason, status, label, decided_at FROM reviews"
                                     " WHERE " + where + " ORDER BY id DESC LIMIT ?", params)) {
    const bool withheld = row.integer("out_of_distribution") != 0;
    nlohmann::json set = nlohmann::json::parse(row.text("prediction_set"), nullptr, false);
    reviews.push_back({{"id", row.integer("id")},
                       {"at", row.text("at")},
                       {"request_id", row.text("request_id")},
                       {"model_version", "v" + std::to_string(row.integer("model_version"))},
                       {"answer", withheld ? nlohmann::json() : nlohmann::json(row.text("answer"))},
                       {"out_of_distribution", withheld},
                       {"prediction_set", set.is_discarded() ? nlohmann::json() : set},
                       {"confidence", withheld ? nlohmann::json() : nlohmann::json(row.real("confidence"))},
                       {"reason", row.text("reason")},
                       {"status", row.text("status")},
                       {"label", optional_text(row, "label")},
                       {"decided_at", optional_text(row, "decided_at")}});
  }
  return reviews;
}

std::optional<std::string> ReviewQueue::image_png(int64_t id) {
  auto rows = db_.query("SELECT image FROM reviews WHERE id = ? AND status = 'pending'", {id});
  if (rows.empty() || rows[0].is_null("image")) return std::nullopt;
  return rows[0].text("image");
}

// The image goes with the decision: a labelled scan lives on as a training upload (stored before), a discarded one
// not at all. Conditional on `pending`, so of two decisions one wins.
bool ReviewQueue::decide(int64_t id, const std::string& status, const std::string& label) {
  bool decided = false;
  db_.transaction([&](Database::Session& session) {
    session.exec("UPDATE reviews SET status = ?, label = ?, decided_at = ?, image = NULL"
                 " WHERE id = ? AND status = 'pending'",
                 {status, label.empty() ? SqlValue(nullptr) : SqlValue(label), utc_now_iso8601(), id});
    decided = session.changes() == 1;
  });
  return decided;
}

int64_t ReviewQueue::dropped() {
  auto rows = db_.query("SELECT value FROM review_counters WHERE name = 'dropped'");
  return (rows.empty() ? 0 : rows[0].integer("value")) + dropped_in_memory_.load();
}

int64_t ReviewQueue::pending() {
  return db_.query("SELECT COUNT(*) AS n FROM reviews WHERE status = 'pending'").at(0).integer("n");
}

}  // namespace mriscan
