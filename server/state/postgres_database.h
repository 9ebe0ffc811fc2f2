// The PostgreSQL backend of Database (database.h), through libpq: the state of replicas on many hosts that share
// nothing but this database (docs/replicas.md).
//
// One connection per object, guarded by a mutex, as for SQLite. Write transactions are READ COMMITTED and begin
// with `pg_advisory_xact_lock(kWriteLockKey)`: every writer of every replica takes this one lock first, so write
// transactions run one at a time, exactly as SQLite's BEGIN IMMEDIATE makes them, and every rule written for
// SQLite holds unchanged (no write skew, no deadlock: there is one lock). The state's write rate is a few small
// transactions a second, far below what one lock serializes. The lock waits at most `lock_timeout_ms`
// (PostgreSQL's lock_timeout), then DatabaseBusyError.
//
// A write outside a transaction (exec) is a transaction of its own, so it takes the lock too: every write of every
// replica is serialized, as on SQLite. Reads (query) take no lock.
//
// Faults: a dropped connection, a server that is shutting down or starting (SQLSTATE class 08 but 08P01, 57P01-03,
// or no connection), a standby after a failover (25006), and a serialization failure or deadlock (40001, 40P01;
// neither should occur under the one lock) are retried up to `attempts` times within `retry_budget_ms`, with a
// doubling pause, reconnecting first; the whole transaction body runs again (the body may run more than once,
// database.h). Then DatabaseUnavailableError (or DatabaseBusyError), and for `fail_fast_ms` every call fails at
// once, so a database that is away holds no HTTP worker for long. A connection that drops while COMMIT is in flight
// is not retried: the outcome is unknown, and the error says so. Disk full (53100) is StorageFullError. Statements
// time out after `statement_timeout_ms`. The session settings are SET after connecting (a URL's `options` cannot
// drop them), with bytea_output = hex.
// What it is not: a pool (one connection serves the state's few statements; predictions read no row).
#pragma once

#include <chrono>
#include <mutex>
#include <string>

#include "server/state/database.h"

struct pg_conn;

namespace mriscan {

class PostgresDatabase : public Database {
 public:
  struct Options {
    int lock_timeout_ms = 5000;
    int statement_timeout_ms = 30000;
    int connect_timeout_seconds = 2;
    int attempts = 4;            // tries of a statement or transaction whose connection failed
    int first_pause_ms = 200;    // then 400, 800 ms: about 1.4 s of retrying in all
    int retry_budget_ms = 3000;  // and no retry that would end later than this after the first try
    int fail_fast_ms = 1000;     // after giving up, calls fail at once for this long
    std::chrono::milliseconds retry_budget() const { return std::chrono::milliseconds(retry_budget_ms); }
  };
  static constexpr int64_t kWriteLockKey = 0x6d72697363616e;  // "mriscan"

  // Connects (throws DatabaseUnavailableError naming the server, never the password, if it cannot).
  PostgresDatabase(std::string url, Options options);
  ~PostgresDatabase() override;
  PostgresDatabase(const PostgresDatabase&) = delete;
  PostgresDatabase& operator=(const PostgresDatabase&) = delete;

  void exec(const std::string& sql, const std::vector<SqlValue>& params = {}) override;
  std::vector<SqlRow> query(const std::string& sql, const std::vector<SqlValue>& params = {}) override;
  void transaction(const std::function<void(Session&)>& body) override;
  void add_column_if_missing(const std::string& table, const std::string& column,
                             const std::string& declaration) override;
  SqlDialect dialect() const override { return SqlDialect::kPostgres; }
  std::string describe() const override { return described_; }

 private:
  pg_conn* connection();  // connects when there is no good connection
  void disconnect();
  // Runs `attempt` with the retries above; `attempt` gets a live connection. `lock` (of mutex_) is released during
  // the pauses between tries only.
  void with_retries(std::unique_lock<std::mutex>& lock, const std::function<void(pg_conn*)>& attempt);

  std::string url_;
  std::string described_;  // "PostgreSQL host:port/dbname"
  Options options_;
  std::mutex mutex_;
  pg_conn* conn_ = nullptr;
  std::chrono::steady_clock::time_point unavailable_until_;  // see Options::fail_fast_ms
};

// "?" placeholders -> "$1", "$2", ... outside quoted literals and identifiers (exposed for its test).
std::string postgres_placeholders(const std::string& sql);

}  // namespace mriscan
