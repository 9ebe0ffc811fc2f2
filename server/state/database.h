// A small SQLite wrapper for the server's persistent state (model registry, retraining jobs, upload records).
//
// One connection per Database, guarded by a mutex: every statement and every transaction runs under it, so the
// server's threads never interleave statements of two transactions. The database is opened in WAL mode with
// synchronous=FULL: a committed transaction survives `kill -9` and power loss, an uncommitted one vanishes, which
// is what makes "restart finds a consistent registry" true. Values are bound with placeholders (`?`), never
// spliced into SQL text.
// What it is not: an ORM or a connection pool; the tables belong to the classes that use them.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

struct sqlite3;

namespace mriscan {

// Another connection held the lock for longer than the busy timeout (nothing was changed).
struct DatabaseBusyError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using SqlValue = std::variant<std::nullptr_t, int64_t, double, std::string>;

// One result row, by column name.
class SqlRow {
 public:
  std::map<std::string, SqlValue> columns;
  bool is_null(const std::string& name) const;
  int64_t integer(const std::string& name) const;  // throws std::runtime_error naming the column
  double real(const std::string& name) const;
  std::string text(const std::string& name) const;  // "" for NULL
};

class Database {
 public:
  // Opens (creating if needed) the file; throws std::runtime_error naming the file on failure. A statement that
  // finds the database locked retries for `busy_timeout_ms`, then throws DatabaseBusyError; a full disk throws
  // StorageFullError (io/atomic_file.h).
  explicit Database(const std::string& path, int busy_timeout_ms = 5000);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // The unlocked interface a transaction body receives.
  class Session {
   public:
    void exec(const std::string& sql, const std::vector<SqlValue>& params = {});
    std::vector<SqlRow> query(const std::string& sql, const std::vector<SqlValue>& params = {});
    int64_t last_insert_id() const;
    int changes() const;

   private:
    friend class Database;
    explicit Session(sqlite3* db) : db_(db) {}
    sqlite3* db_;
  };

  void exec(const std::string& sql, const std::vector<SqlValue>& params = {});
  std::vector<SqlRow> query(const std::string& sql, const std::vector<SqlValue>& params = {});
  // BEGIN IMMEDIATE; body; COMMIT. If body throws, ROLLBACK and rethrow: all of it or nothing.
  void transaction(const std::function<void(Session&)>& body);

  // Schema migration for a table created by an older version: adds the column unless it exists.
  void add_column_if_missing(const std::string& table, const std::string& column, const std::string& declaration);

  const std::string& path() const { return path_; }

 private:
  std::mutex mutex_;
  sqlite3* db_ = nullptr;
  std::string path_;
};

// Current UTC time as ISO 8601 ("2024-05-01T12:34:56Z"), the format every created_at column uses.
std::string utc_now_iso8601();

}  // namespace mriscan
