// The audit trail's queue, writer thread and queries; see audit_log.h.
#include "server/audit_log.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace mriscan {
namespace {

constexpr size_t kRowsPerTransaction = 500;

constexpr const char* kColumns =
    "at, request_id, route, replica, model_version, input_sha256, answer, out_of_distribution, prediction_set, "
    "confidence";

nlohmann::json row_json(const SqlRow& row) {
  nlohmann::json set = nlohmann::json::parse(row.text("prediction_set"), nullptr, false);
  const bool withheld = row.integer("out_of_distribution") != 0;
  return {{"id", row.integer("id")},
          {"at", row.text("at")},
          {"request_id", row.text("request_id")},
          {"route", row.text("route")},
          {"replica", row.text("replica")},
          {"model_version", "v" + std::to_string(row.integer("model_version"))},
          {"input_sha256", row.text("input_sha256")},
          {"answer", withheld ? nlohmann::json() : nlohmann::json(row.text("answer"))},
          {"out_of_distribution", withheld},
          {"prediction_set", set.is_discarded() ? nlohmann::json() : set},
          {"confidence", withheld ? nlohmann::json() : nlohmann::json(row.real("confidence"))}};
}

}  // namespace

std::string utc_now_iso8601_ms() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const int millis = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[40];
  const size_t length = std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(buffer + length, sizeof(buffer) - length, ".%03dZ", millis);
  return buffer;
}

AuditLog::AuditLog(Database& db, AuditOptions options) : db_(db), options_(options) {
  db_.transaction([](Database::Session& session) {
    session.exec("CREATE TABLE IF NOT EXISTS audit (id " + sql_auto_id(session.dialect()) +
                 ", at TEXT NOT NULL, request_id TEXT NOT NULL, route TEXT NOT NULL, replica TEXT NOT NULL,"
                 " model_version INTEGER NOT NULL, input_sha256 TEXT NOT NULL, answer TEXT NOT NULL,"
                 " out_of_distribution INTEGER NOT NULL, prediction_set TEXT, confidence DOUBLE PRECISION NOT NULL)");
    session.exec("CREATE INDEX IF NOT EXISTS audit_at ON audit (at)");
  });
  if (options_.enabled) writer_ = std::thread([this] { writer_loop(); });
}

AuditLog::~AuditLog() { stop(); }

void AuditLog::record(AuditEntry entry) {
  if (!options_.enabled) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (queue_.size() >= options_.max_queued) {
    queue_.pop_front();
    ++dropped_;
  }
  queue_.push_back(std::move(entry));
}

size_t AuditLog::queued() {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size();
}

void AuditLog::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
}

void AuditLog::writer_loop() {
  auto next_prune = std::chrono::steady_clock::now();
  for (;;) {
    bool stopping = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait_for(lock, std::chrono::milliseconds(options_.flush_ms), [this] { return stopping_; });
      stopping = stopping_;
    }
    write_queued();
    if (stopping) return;
    if (std::chrono::steady_clock::now() >= next_prune) {
      prune();
      next_prune = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    }
  }
}

void AuditLog::flush() { write_queued(); }

// One transaction for everything queued; on failure the rows go back to the front of the queue, for the next try.
void AuditLog::write_queued() {
  std::lock_guard<std::mutex> writing(writing_);  // flush() returns only once what was queued before is written
  std::deque<AuditEntry> batch;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    batch.swap(queue_);
  }
  size_t written = 0;
  try {
    while (written < batch.size()) {
      const size_t end = std::min(batch.size(), written + kRowsPerTransaction);
      write_rows(batch, written, end);
      written = end;
    }
  } catch (const std::exception& error) {
    batch.erase(batch.begin(), batch.begin() + static_cast<std::ptrdiff_t>(written));
    std::fprintf(stderr, "mriscan serve: audit trail: %zu rows wait for the database: %s\n", batch.size(),
                 error.what());
    std::lock_guard<std::mutex> lock(mutex_);
    batch.insert(batch.end(), queue_.begin(), queue_.end());
    queue_.swap(batch);
    while (queue_.size() > options_.max_queued) queue_.pop_front(), ++dropped_;
  }
}

// Rows [first, end) of `batch` in one transaction: a few hundred at most, so that rows piled up while the database
// was away never hold its write lock for long once it is back.
void AuditLog::write_rows(const std::deque<AuditEntry>& batch, size_t first, size_t end) {
  db_.transaction([&](Database::Session& session) {
    for (size_t i = first; i < end; ++i) {
      const AuditEntry& e = batch[i];
      session.exec(std::string("INSERT INTO audit (") + kColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   {e.at, e.request_id, e.route, e.replica, e.model_version, e.input_sha256, e.answer,
                    int64_t(e.out_of_distribution),
                    e.prediction_set.is_null() ? SqlValue(nullptr) : SqlValue(e.prediction_set.dump()),
                    e.confidence});
    }
  });
}

void AuditLog::prune() {
  if (options_.retention_days <= 0) return;
  const std::time_t cutoff = std::time(nullptr) - std::time_t{options_.retention_days} * 86400;
  std::tm utc{};
  gmtime_r(&cutoff, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%S", &utc);
  try {
    db_.transaction([&](Database::Session& session) {
      session.exec("DELETE FROM audit WHERE at < ?", {std::string(buffer)});
    });
  } catch (const std::exception& error) {
    std::fprintf(stderr, "mriscan serve: audit trail: pruning failed (retried in a minute): %s\n", error.what());
  }
}

std::vector<nlohmann::json> AuditLog::find(const AuditQuery& query) {
  std::string where = "1 = 1";
  std::vector<SqlValue> params;
  auto add = [&](const std::string& condition, SqlValue value) {
    where += " AND " + condition;
    params.push_back(std::move(value));
  };
  if (query.from) add("at >= ?", *query.from);
  if (query.to) add("at < ?", *query.to);
  if (query.model_version) add("model_version = ?", *query.model_version);
  if (query.answer && *query.answer == "withheld") add("out_of_distribution = ?", int64_t{1});
  else if (query.answer) add("answer = ? AND out_of_distribution = 0", *query.answer);
  if (query.request_id) add("request_id = ?", *query.request_id);
  if (query.input_sha256) add("input_sha256 = ?", *query.input_sha256);
  if (query.before_id) add("id < ?", *query.before_id);
  params.push_back(int64_t{query.limit});
  std::vector<nlohmann::json> rows;
  for (const SqlRow& row : db_.query("SELECT id, " + std::string(kColumns) + " FROM audit WHERE " + where +
                                         " ORDER BY id DESC LIMIT ?", params))
    rows.push_back(row_json(row));
  return rows;
}

}  // namespace mriscan
