// PostgreSQL backend through libpq: parameters bound as $n, rows by column name, write transactions serialized by
// one advisory lock, bounded retries after dropped connections (see postgres_database.h).
#include "server/state/postgres_database.h"

#include <libpq-fe.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "io/atomic_file.h"

namespace mriscan {
namespace {

// PostgreSQL's built-in type OIDs (pg_type.h), the ones the state's columns use.
constexpr Oid kBool = 16, kBytea = 17, kInt8 = 20, kInt2 = 21, kInt4 = 23, kFloat4 = 700, kFloat8 = 701,
              kNumeric = 1700;

// A failure worth another attempt: the connection (reconnect first) or a serialization failure.
struct RetryableError : std::runtime_error {
  RetryableError(const std::string& message, bool connection)
      : std::runtime_error(message), connection(connection) {}
  bool connection;
};

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

[[noreturn]] void throw_postgres(PGconn* conn, const PGresult* result, const std::string& what) {
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const std::string code = state ? state : "";
  const char* detail = result && *PQresultErrorMessage(result) ? PQresultErrorMessage(result) : PQerrorMessage(conn);
  const std::string message = "postgresql: " + what + ": " + trimmed(detail) + (code.empty() ? "" : " (" + code + ")");
  // The connection is gone, the server is shutting down or starting (57P01-57P03), or it is a standby after a
  // failover (25006: read-only): reconnect and retry. 08P01 (protocol violation) is a bug here, not the network.
  const bool connection_failure =
      PQstatus(conn) != CONNECTION_OK || (code.rfind("08", 0) == 0 && code != "08P01") || code.rfind("57P", 0) == 0 ||
      code == "25006";
  if (connection_failure) throw RetryableError(message, true);
  if (code == "40001" || code == "40P01") throw RetryableError(message, false);
  if (code == "55P03" || code == "57014") throw DatabaseBusyError(message);  // lock or statement timeout
  if (code == "53100") throw StorageFullError(message);
  throw std::runtime_error(message);
}

std::string hex_decode_bytea(const char* text, int length) {
  if (length < 2 || text[0] != '\\' || text[1] != 'x') return std::string(text, length);  // not the hex format
  auto nibble = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  std::string bytes((length - 2) / 2, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = char(nibble(text[2 + 2 * i]) << 4 | nibble(text[3 + 2 * i]));
  return bytes;
}

SqlValue cell(const PGresult* result, int row, int column) {
  if (PQgetisnull(result, row, column)) return nullptr;
  const char* text = PQgetvalue(result, row, column);
  const int length = PQgetlength(result, row, column);
  switch (PQftype(result, column)) {
    case kInt8: case kInt2: case kInt4: return int64_t(std::strtoll(text, nullptr, 10));
    case kFloat4: case kFloat8: case kNumeric: return std::strtod(text, nullptr);
    case kBool: return int64_t(text[0] == 't');
    case kBytea: return SqlBlob{hex_decode_bytea(text, length)};
    default: return std::string(text, length);
  }
}

// One statement; returns its rows, and the rows it changed in `changes`.
std::vector<SqlRow> run(PGconn* conn, const std::string& sql, const std::vector<SqlValue>& params = {},
                        int64_t* changes = nullptr) {
  const size_t n = params.size();
  std::vector<std::string> texts(n);
  std::vector<const char*> values(n, nullptr);
  std::vector<int> lengths(n, 0), formats(n, 0);
  std::vector<Oid> types(n, 0);  // 0: the server infers it from the statement
  for (size_t i = 0; i < n; ++i) {
    const SqlValue& value = params[i];
    if (auto* v = std::get_if<int64_t>(&value)) texts[i] = std::to_string(*v), types[i] = kInt8;
    else if (auto* v = std::get_if<double>(&value)) {
      char buffer[32];
      std::snprintf(buffer, sizeof buffer, "%.17g", *v);
      texts[i] = buffer, types[i] = kFloat8;
    } else if (auto* v = std::get_if<std::string>(&value)) texts[i] = *v;
    else if (auto* v = std::get_if<SqlBlob>(&value)) {
      values[i] = v->bytes.data(), lengths[i] = static_cast<int>(v->bytes.size()), formats[i] = 1, types[i] = kBytea;
      continue;
    } else continue;  // NULL
    values[i] = texts[i].c_str();
  }
  const std::string statement = postgres_placeholders(sql);
  PGresult* result = PQexecParams(conn, statement.c_str(), static_cast<int>(n), types.data(), values.data(),
                                  lengths.data(), formats.data(), 0);
  std::unique_ptr<PGresult, decltype(&PQclear)> owned(result, &PQclear);
  const ExecStatusType status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) throw_postgres(conn, result, "'" + sql + "'");
  if (changes) *changes = *PQcmdTuples(result) ? std::strtoll(PQcmdTuples(result), nullptr, 10) : 0;
  std::vector<SqlRow> rows(PQntuples(result));
  for (int r = 0; r < PQntuples(result); ++r)
    for (int c = 0; c < PQnfields(result); ++c) rows[r].columns[PQfname(result, c)] = cell(result, r, c);
  return rows;
}

void rollback_quietly(PGconn* conn) {
  if (PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE) PQclear(PQexec(conn, "ROLLBACK"));
}

class PostgresSession : public Database::Session {
 public:
  explicit PostgresSession(PGconn* conn) : conn_(conn) {}
  void exec(const std::string& sql, const std::vector<SqlValue>& params) override {
    run(conn_, sql, params, &changes_);
  }
  std::vector<SqlRow> query(const std::string& sql, const std::vector<SqlValue>& params) override {
    return run(conn_, sql, params);  // changes() stays that of the last exec, as SQLite's does
  }
  int64_t changes() const override { return changes_; }
  SqlDialect dialect() const override { return SqlDialect::kPostgres; }

 private:
  PGconn* conn_;
  int64_t changes_ = 0;
};

// "PostgreSQL host:port/dbname" from the URL, without user or password.
std::string describe_url(const std::string& url) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
  if (!options) {
    PQfreemem(error);
    throw std::invalid_argument("--database: not a valid PostgreSQL URL");
  }
  std::string host = "localhost", port = "5432", dbname;
  for (PQconninfoOption* o = options; o->keyword; ++o) {
    if (!o->val) continue;
    const std::string keyword = o->keyword;
    if (keyword == "host") host = o->val;
    if (keyword == "port") port = o->val;
    if (keyword == "dbname") dbname = o->val;
  }
  PQconninfoFree(options);
  return "PostgreSQL " + host + ":" + port + "/" + dbname;
}

}  // namespace

std::string postgres_placeholders(const std::string& sql) {
  std::string out;
  int next = 0;
  char quote = 0;  // inside '...' or "..."
  for (char c : sql) {
    if (quote) {
      if (c == quote) quote = 0;  // a doubled quote closes and reopens: the same result
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '?') {
      out += '$';
      out += std::to_string(++next);
      continue;
    }
    out += c;
  }
  return out;
}

PostgresDatabase::PostgresDatabase(std::string url, Options options)
    : url_(std::move(url)), described_(describe_url(url_)), options_(options) {
  std::unique_lock<std::mutex> lock(mutex_);
  with_retries(lock, [](PGconn*) {});  // connects, or throws DatabaseUnavailableError after the retries
}

PostgresDatabase::~PostgresDatabase() { disconnect(); }

void PostgresDatabase::disconnect() {
  if (conn_) PQfinish(conn_);
  conn_ = nullptr;
}

PGconn* PostgresDatabase::connection() {
  if (conn_ && PQstatus(conn_) == CONNECTION_OK) return conn_;
  disconnect();
  const std::string timeout = std::to_string(options_.connect_timeout_seconds);
  // Defaults first: what the URL says overrides them (libpq applies the expanded dbname in order).
  const char* keywords[] = {"connect_timeout", "application_name", "client_encoding", "keepalives_idle",
                            "keepalives_interval", "keepalives_count", "dbname", nullptr};
  const char* values[] = {timeout.c_str(), "mriscan", "UTF8", "10", "5", "3", url_.c_str(), nullptr};
  conn_ = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (PQstatus(conn_) != CONNECTION_OK) {
    const std::string message = "cannot connect to " + described_ + ": " + trimmed(PQerrorMessage(conn_));
    disconnect();
    throw RetryableError(message, true);
  }
  // After connecting, so that no `options` in the URL can drop them: the timeouts this class relies on, and
  // bytea in the hex format that cell() decodes.
  run(conn_, "SET lock_timeout = " + std::to_string(options_.lock_timeout_ms));
  run(conn_, "SET statement_timeout = " + std::to_string(options_.statement_timeout_ms));
  run(conn_, "SET idle_in_transaction_session_timeout = 60000");
  run(conn_, "SET client_min_messages = warning");
  run(conn_, "SET bytea_output = hex");
  return conn_;
}

void PostgresDatabase::with_retries(std::unique_lock<std::mutex>& lock,
                                    const std::function<void(PGconn*)>& attempt) {
  const auto now = std::chrono::steady_clock::now();
  if (now < unavailable_until_)  // failed moments ago: answer at once rather than hold a worker retrying again
    throw DatabaseUnavailableError("cannot reach " + described_ + " (it failed less than " +
                                   std::to_string(options_.fail_fast_ms) + " ms ago)");
  for (int tries = 1;; ++tries) {
    try {
      attempt(connection());
      return;
    } catch (const RetryableError& error) {
      if (error.connection) disconnect();
      const auto pause = std::chrono::milliseconds(options_.first_pause_ms << (tries - 1));
      if (tries >= options_.attempts || std::chrono::steady_clock::now() + pause - now > options_.retry_budget()) {
        const std::string message = std::string(error.what()) + " (after " + std::to_string(tries) + " attempts)";
        if (!error.connection) throw DatabaseBusyError(message);
        unavailable_until_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.fail_fast_ms);
        throw DatabaseUnavailableError(message);
      }
      lock.unlock();  // other threads may try meanwhile: each operation runs whole under the lock
      std::this_thread::sleep_for(pause);
      lock.lock();
    }
  }
}

// A write outside a transaction is one: it takes the write lock like any other (database.h), and a connection lost
// during its COMMIT is not retried.
void PostgresDatabase::exec(const std::string& sql, const std::vector<SqlValue>& params) {
  transaction([&](Session& session) { session.exec(sql, params); });
}

std::vector<SqlRow> PostgresDatabase::query(const std::string& sql, const std::vector<SqlValue>& params) {
  std::unique_lock<std::mutex> lock(mutex_);
  std::vector<SqlRow> rows;
  with_retries(lock, [&](PGconn* conn) { rows = run(conn, sql, params); });
  return rows;
}

void PostgresDatabase::transaction(const std::function<void(Session&)>& body) {
  std::unique_lock<std::mutex> lock(mutex_);
  with_retries(lock, [&](PGconn* conn) {
    run(conn, "BEGIN");
    try {
      run(conn, "SELECT pg_advisory_xact_lock(?)", {kWriteLockKey});  // one writer at a time (see the header)
      PostgresSession session(conn);
      body(session);
    } catch (...) {
      rollback_quietly(conn);
      throw;
    }
    try {
      run(conn, "COMMIT");
    } catch (const RetryableError& error) {
      if (!error.connection) throw;
      throw DatabaseUnavailableError(std::string(error.what()) +
                                     " (the connection dropped during COMMIT: the outcome is unknown)");
    }
  });
}

void PostgresDatabase::add_column_if_missing(const std::string& table, const std::string& column,
                                             const std::string& declaration) {
  transaction([&](Session& session) {
    session.exec("ALTER TABLE " + table + " ADD COLUMN IF NOT EXISTS " + column + " " + declaration);
  });
}

}  // namespace mriscan
