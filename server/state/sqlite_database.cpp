// SQLite backend: prepared statements with bound parameters, rows by column name, transactions with rollback.
#include "server/state/sqlite_database.h"

#include <sqlite3.h>

#include <chrono>
#include <stdexcept>
#include <thread>

#include "io/atomic_file.h"

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
    else if (auto* v = std::get_if<SqlBlob>(&value))
      rc = sqlite3_bind_blob64(stmt, index, v->bytes.data(), v->bytes.size(), SQLITE_TRANSIENT);
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
        case SQLITE_BLOB: {
          const auto* bytes = static_cast<const char*>(sqlite3_column_blob(statement.stmt, c));
          row.columns[name] = SqlBlob{std::string(bytes ? bytes : "", sqlite3_column_bytes(statement.stmt, c))};
          break;
        }
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

// The transaction body's view: the same connection, already inside BEGIN IMMEDIATE.
class SqliteSession : public Database::Session {
 public:
  explicit SqliteSession(sqlite3* db) : db_(db) {}
  void exec(const std::string& sql, const std::vector<SqlValue>& params) override { run(db_, sql, params); }
  std::vector<SqlRow> query(const std::string& sql, const std::vector<SqlValue>& params) override {
    return run(db_, sql, params);
  }
  int64_t changes() const override { return sqlite3_changes(db_); }
  SqlDialect dialect() const override { return SqlDialect::kSqlite; }

 private:
  sqlite3* db_;
};

}  // namespace

SqliteDatabase::SqliteDatabase(const std::string& path, int busy_timeout_ms) : path_(path) {
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

SqliteDatabase::~SqliteDatabase() { sqlite3_close(db_); }

void SqliteDatabase::exec(const std::string& sql, const std::vector<SqlValue>& params) {
  std::lock_guard<std::mutex> lock(mutex_);
  run(db_, sql, params);
}

std::vector<SqlRow> SqliteDatabase::query(const std::string& sql, const std::vector<SqlValue>& params) {
  std::lock_guard<std::mutex> lock(mutex_);
  return run(db_, sql, params);
}

void SqliteDatabase::transaction(const std::function<void(Session&)>& body) {
  std::lock_guard<std::mutex> lock(mutex_);
  run(db_, "BEGIN IMMEDIATE", {});
  SqliteSession session(db_);
  try {
    body(session);
    run(db_, "COMMIT", {});
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void SqliteDatabase::add_column_if_missing(const std::string& table, const std::string& column,
                                           const std::string& declaration) {
  // In a write transaction, so that of two processes migrating at once the second sees the first's column.
  transaction([&](Session& session) {
    for (const SqlRow& row : session.query("PRAGMA table_info(" + table + ")"))
      if (row.text("name") == column) return;
    session.exec("ALTER TABLE " + table + " ADD COLUMN " + column + " " + declaration);
  });
}

}  // namespace mriscan
