// The server's persistent state (model registry, retraining jobs, upload records) behind one small interface with
// two implementations: SQLite in the state directory (sqlite_database.h, the default: one host) and PostgreSQL
// (postgres_database.h, `--database postgresql://...`: replicas on many hosts that share nothing else).
//
// What both guarantee, and what the classes above rely on:
//   * `transaction` is a WRITE transaction that excludes every other write transaction of every process for its
//     whole duration (SQLite: BEGIN IMMEDIATE; PostgreSQL: a transaction-wide advisory lock taken first), so a
//     read inside it sees everything committed before and nothing can slip in between. All of it or nothing.
//   * Statements use `?` placeholders with bound values, never values spliced into SQL text.
//   * A lock held past the busy timeout throws DatabaseBusyError; a database that cannot be reached (restarting,
//     a dropped connection) DatabaseUnavailableError after a bounded number of retries; a full disk
//     StorageFullError (io/atomic_file.h). The server answers the first two 503 with Retry-After, the last 507.
//   * A transaction body may run MORE THAN ONCE (PostgreSQL retries it after a dropped connection or a
//     serialization failure), so it touches only the database and the values it computes; the exception is a
//     body that renames files, which only the SQLite path does (it never retries).
// The SQL the classes write is the subset both understand: `INSERT ... ON CONFLICT DO NOTHING`, `RETURNING`,
// `CASE`, and the few dialect differences below as helper functions.
// What it is not: an ORM or a connection pool; the tables belong to the classes that use them.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace mriscan {

// Another connection held the lock for longer than the busy timeout (nothing was changed).
struct DatabaseBusyError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The database could not be reached, or the connection dropped, and retrying did not help (nothing was changed,
// except when the connection dropped during a COMMIT, whose outcome is then unknown: the message says so).
struct DatabaseUnavailableError : DatabaseBusyError {
  using DatabaseBusyError::DatabaseBusyError;
};

// Bytes for a BLOB (SQLite) or BYTEA (PostgreSQL) column; a plain std::string binds as text.
struct SqlBlob {
  std::string bytes;
};

using SqlValue = std::variant<std::nullptr_t, int64_t, double, std::string, SqlBlob>;

// One result row, by column name. A BLOB or BYTEA column reads as a std::string of its bytes.
class SqlRow {
 public:
  std::map<std::string, SqlValue> columns;
  bool is_null(const std::string& name) const;
  int64_t integer(const std::string& name) const;  // throws std::runtime_error naming the column
  double real(const std::string& name) const;
  std::string text(const std::string& name) const;  // "" for NULL
};

enum class SqlDialect { kSqlite, kPostgres };

class Database {
 public:
  virtual ~Database() = default;

  // The interface a transaction body receives (see the header comment: the body may run more than once).
  class Session {
   public:
    virtual ~Session() = default;
    virtual void exec(const std::string& sql, const std::vector<SqlValue>& params = {}) = 0;
    virtual std::vector<SqlRow> query(const std::string& sql, const std::vector<SqlValue>& params = {}) = 0;
    virtual int64_t changes() const = 0;  // rows changed by the last exec
    virtual SqlDialect dialect() const = 0;
  };

  virtual void exec(const std::string& sql, const std::vector<SqlValue>& params = {}) = 0;
  virtual std::vector<SqlRow> query(const std::string& sql, const std::vector<SqlValue>& params = {}) = 0;
  // Begin (excluding every other writer); body; commit. If body throws, roll back and rethrow.
  virtual void transaction(const std::function<void(Session&)>& body) = 0;
  // Schema migration for a table created by an older version: adds the column unless it exists.
  virtual void add_column_if_missing(const std::string& table, const std::string& column,
                                     const std::string& declaration) = 0;
  virtual SqlDialect dialect() const = 0;
  // Whether model files and uploads are kept in the database too (server/state/blob_table.h): true for
  // PostgreSQL, whose replicas share no disk; SQLite's replicas share the state directory instead.
  bool holds_files() const { return dialect() == SqlDialect::kPostgres; }
  // For logs and start-up messages: the file, or the server and database (never a password).
  virtual std::string describe() const = 0;
};

// `url` "postgresql://..." (or "postgres://...") opens PostgreSQL; "" opens SQLite at `sqlite_path`.
// `busy_timeout_ms`: how long a statement waits for another writer's lock before DatabaseBusyError.
std::unique_ptr<Database> open_database(const std::string& url, const std::string& sqlite_path, int busy_timeout_ms);

// The dialects' differences, as SQL fragments.
std::string sql_now_seconds(SqlDialect dialect);  // the database's clock, as Unix seconds (a double)
std::string sql_auto_id(SqlDialect dialect);      // an INTEGER primary key the database numbers
std::string sql_blob_type(SqlDialect dialect);    // BLOB or BYTEA

// Current UTC time as ISO 8601 ("2024-05-01T12:34:56Z"), the format every created_at column uses.
std::string utc_now_iso8601();

}  // namespace mriscan
