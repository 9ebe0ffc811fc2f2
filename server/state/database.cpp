// SQLite wrapper: prepared statements with bound parameters, rows by column name, transactions with rollback.
#include "server/state/database.h"

#include <sqlite3.h>

#include "io/atomic_file.h"

#include <chrono>
#include <ctime>
#include <thread>
#include <stdexcept>

namespace mriscan {
namespace {

// Typed by cause, so callers can answer "disk full" (507) or "busy, retry" (503) instead of a bare 500.
[[noreturn]] void throw_sqlite(sqlite3* db, const std::string& what) {
  const std::string message = "sqlite: " + what + ": " + (db ? sqlite3_errmsg(db) : "out of memory");
  const int code = db ? (sqlite3_errcode(db) & 0xff) : SQLITE_NOMEM;
  if (code == SQLITE_FULL || (code == SQLITE_IOERR && is_storage_full_errno(sqlite3_system_errno(db))))
    throw StorageFullError(message);
  if (code == SQLITE_BUSY || code == SQLITE_LOCKED) throw DatabaseBusyError(message);
  throw std::runtime_error(message);
}

// RAII for a prepared statement.
struct Statement {
  sqlite3_stmt* stmt = nullptr;
  ~Statement() { sqlite3_finalize(stmt); }
};

void bind_all(sqlite3* db, sqlite3_stmt* stmt, const std::vector<SqlValue>& params) {
  for (size_t i = 0; i < params.size(); ++i) {
    int index = static_cast<int>(i) + 1;
    int rc = SQLITE_OK;
    const SqlValue& value = params[i];
    if (std::holds_alternative<std::nullptr_t>(value)) rc = sqlite3_bind_null(stmt, index);
    else if (auto* v = std::get_if<int64_t>(&value)) rc = sqlite3_bind_int64(stmt, index, *v);
    else if (auto* v = std::get_if<double>(&value)) rc = sqlite3_bind_double(stmt, index, *v);
    else {
      const auto& text = std::get<std::string>(value);
      rc = sqlite3_bind_text(stmt, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    }
    if (rc != SQLITE_OK) throw_sqlite(db, "bind parameter " + std::to_string(index));
  }
}

std::vector<SqlRow> run(sqlite3* db, const std::string& sql, const std::vector<SqlValue>& params) {
  Statement statement;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &statement.stmt, nullptr) != SQLITE_OK)
    throw_sqlite(db, "prepare '" + sql + "'");
  bind_all(db, statement.stmt, params);
  std::vector<SqlRow> rows;
  for (;;) {
    int rc = sqlite3_step(statement.stmt);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) throw_sqlite(db, "step '" + sql + "'");
    SqlRow row;
    int count = sqlite3_column_count(statement.stmt);
    for (int c = 0; c < count; ++c) {
      std::string name = sqlite3_column_name(statement.stmt, c);
      switch (sqlite3_column_type(statement.stmt, c)) {
        case SQLITE_INTEGER: row.columns[name] = int64_t(sqlite3_column_int64(statement.stmt, c)); break;
        case SQLITE_FLOAT: row.columns[name] = sqlite3_column_double(statement.stmt, c); break;
        case SQLITE_NULL: row.columns[name] = nullptr; break;
        default: {
          const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(statement.stmt, c));
          row.columns[name] = std::string(text, sqlite3_column_bytes(statement.stmt, c));
        }
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace

bool SqlRow::is_null(const std::string& name) const {
  auto found = columns.find(name);
  return found == columns.end() || std::holds_alternative<std::nullptr_t>(found->second);
}

int64_t SqlRow::integer(const std::string& name) const {
  auto found = columns.find(name);
  if (found == columns.end()) throw std::runtime_error("sqlite: no column '" + name + "' in the result");
  if (auto* v = std::get_if<int64_t>(&found->second)) return *v;
  if (auto* v = std::get_if<double>(&found->second)) return static_cast<int64_t>(*v);
  throw std::runtime_error("sqlite: column '" + name + "' is not an integer");
}

double SqlRow::real(const std::string& name) const {
  auto found = columns.find(name);
  if (found == columns.end()) throw std::runtime_error("sqlite: no column '" + name + "' in the result");
  if (auto* v = std::get_if<double>(&found->second)) return *v;
  if (auto* v = std::get_if<int64_t>(&found->second)) return static_cast<double>(*v);
  throw std::runtime_error("sqlite: column '" + name + "' is not a number");
}

std::string SqlRow::text(const std::string& name) const {
  auto found = columns.find(name);
  if (found == columns.end()) throw std::runtime_error("sqlite: no column '" + name + "' in the result");
  if (auto* v = std::get_if<std::string>(&found->second)) return *v;
  if (auto* v = std::get_if<int64_t>(&found->second)) return std::to_string(*v);
  if (auto* v = std::get_if<double>(&found->second)) return std::to_string(*v);
  return "";
}

Database::Database(const std::string& path, int busy_timeout_ms) : path_(path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw std::runtime_error("cannot open database '" + path + "': " + message);
  }
  sqlite3_busy_timeout(db_, busy_timeout_ms);
  // Switching a new database to WAL needs an exclusive lock, and SQLite answers BUSY at once (no busy handler)
  // while another process holds any lock: replicas starting together on a fresh state do. Retried here.
  for (int waited_ms = 0;; waited_ms += 10) {
    try {
      run(db_, "PRAGMA journal_mode=WAL", {});
      break;
    } catch (const DatabaseBusyError&) {
      if (waited_ms >= busy_timeout_ms) {
        sqlite3_close(db_);
        db_ = nullptr;
        throw;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  run(db_, "PRAGMA synchronous=FULL", {});
  run(db_, "PRAGMA foreign_keys=ON", {});
}

Database::~Database() { sqlite3_close(db_); }

void Database::Session::exec(const std::string& sql, const std::vector<SqlValue>& params) { run(db_, sql, params); }

std::vector<SqlRow> Database::Session::query(const std::string& sql, const std::vector<SqlValue>& params) {
  return run(db_, sql, params);
}

int64_t Database::Session::last_insert_id() const { return sqlite3_last_insert_rowid(db_); }
int Database::Session::changes() const { return sqlite3_changes(db_); }

void Database::exec(const std::string& sql, const std::vector<SqlValue>& params) {
  std::lock_guard<std::mutex> lock(mutex_);
  run(db_, sql, params);
}

std::vector<SqlRow> Database::query(const std::string& sql, const std::vector<SqlValue>& params) {
  std::lock_guard<std::mutex> lock(mutex_);
  return run(db_, sql, params);
}

void Database::transaction(const std::function<void(Session&)>& body) {
  std::lock_guard<std::mutex> lock(mutex_);
  run(db_, "BEGIN IMMEDIATE", {});
  Session session(db_);
  try {
    body(session);
    run(db_, "COMMIT", {});
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void Database::add_column_if_missing(const std::string& table, const std::string& column,
                                     const std::string& declaration) {
  // In a write transaction, so that of two processes migrating at once the second sees the first's column.
  transaction([&](Session& session) {
    for (const SqlRow& row : session.query("PRAGMA table_info(" + table + ")"))
      if (row.text("name") == column) return;
    session.exec("ALTER TABLE " + table + " ADD COLUMN " + column + " " + declaration);
  });
}

std::string utc_now_iso8601() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

}  // namespace mriscan
