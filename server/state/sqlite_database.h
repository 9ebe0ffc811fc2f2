// The SQLite backend of Database (database.h): one file in the state directory, for replicas on one host.
//
// One connection per object, guarded by a mutex: every statement and every transaction runs under it, so the
// server's threads never interleave statements of two transactions. The database is opened in WAL mode with
// synchronous=FULL: a committed transaction survives `kill -9` and power loss, an uncommitted one vanishes, which
// is what makes "restart finds a consistent registry" true. Transactions are BEGIN IMMEDIATE (the write lock from
// the start) and are never retried: a lock held past the busy timeout is DatabaseBusyError.
// What it is not: usable across hosts (WAL needs one kernel's shared memory; docs/replicas.md).
#pragma once

#include <mutex>
#include <string>

#include "server/state/database.h"

struct sqlite3;

namespace mriscan {

class SqliteDatabase : public Database {
 public:
  // Opens (creating if needed) the file; throws std::runtime_error naming the file on failure.
  explicit SqliteDatabase(const std::string& path, int busy_timeout_ms = 5000);
  ~SqliteDatabase() override;
  SqliteDatabase(const SqliteDatabase&) = delete;
  SqliteDatabase& operator=(const SqliteDatabase&) = delete;

  void exec(const std::string& sql, const std::vector<SqlValue>& params = {}) override;
  std::vector<SqlRow> query(const std::string& sql, const std::vector<SqlValue>& params = {}) override;
  void transaction(const std::function<void(Session&)>& body) override;
  void add_column_if_missing(const std::string& table, const std::string& column,
                             const std::string& declaration) override;
  SqlDialect dialect() const override { return SqlDialect::kSqlite; }
  std::string describe() const override { return "SQLite " + path_; }

 private:
  std::mutex mutex_;
  sqlite3* db_ = nullptr;
  std::string path_;
};

}  // namespace mriscan
