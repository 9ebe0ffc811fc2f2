// The Database contract (server/state/database.h) on both backends, SQLite in a temporary file and PostgreSQL in a
// cluster of the test's own: all-or-nothing transactions, values of every type round-tripping, changes and
// RETURNING, ON CONFLICT DO NOTHING, writers excluding each other until the busy timeout, the database's clock,
// and the blobs table's parts at and around their size. PostgreSQL only: `?` placeholders outside quotes, a
// transaction body run again after its connection was cut (once committed, nothing doubled), statements surviving a
// server restart, and a server that stays down answered DatabaseUnavailableError after bounded retries.
// What it is not: a test of the classes above the interface (test_server, test_replicas).
#include <atomic>
#include <chrono>
#include <thread>

#include "server/state/blob_table.h"
#include "tests/support/replica_fixture.h"

namespace mriscan::server_test {
namespace {

class DatabaseBackends : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kPostgres && !PostgresCluster::bin_dir())
      GTEST_SKIP() << "PostgreSQL's server is not installed (scripts/install_deps.sh installs it)";
    dir_ = fs::temp_directory_path() /
           ("mriscan_backends_" + std::to_string(::getpid()) + "_" + std::to_string(++count_));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    if (GetParam() == Backend::kPostgres)
      url_ = postgres_cluster().create_database("b" + std::to_string(count_) + "_" + std::to_string(::getpid()));
    db_ = open(5000);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::unique_ptr<Database> open(int busy_timeout_ms) {
    return open_database(url_, (dir_ / "state.db").string(), busy_timeout_ms);
  }

  fs::path dir_;
  std::string url_;
  std::unique_ptr<Database> db_;
  static inline int count_ = 0;
};

INSTANTIATE_TEST_SUITE_P(Backends, DatabaseBackends, ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         backend_name);

TEST_P(DatabaseBackends, TransactionsAreAllOrNothing) {
  db_->exec("CREATE TABLE t (x INTEGER)");
  EXPECT_THROW(db_->transaction([](Database::Session& s) {
    s.exec("INSERT INTO t VALUES (?)", {int64_t(1)});
    throw std::runtime_error("boom");
  }),
               std::runtime_error);
  EXPECT_EQ(db_->query("SELECT COUNT(*) AS n FROM t").at(0).integer("n"), 0);
  db_->transaction([](Database::Session& s) { s.exec("INSERT INTO t VALUES (?)", {int64_t(2)}); });
  db_.reset();
  EXPECT_EQ(open(5000)->query("SELECT x FROM t").at(0).integer("x"), 2);
}

TEST_P(DatabaseBackends, ValuesOfEveryTypeRoundTrip) {
  db_->exec("CREATE TABLE v (i INTEGER, big BIGINT, d DOUBLE PRECISION, s TEXT, b " + sql_blob_type(db_->dialect()) +
            ", n TEXT)");
  const std::string text = "it's \"quoted\", a ? and UTF-8: \xC3\xA9\xE2\x9C\x93";
  const std::string bytes("\x00\x01\xFF\x7F\\x00", 8);
  db_->exec("INSERT INTO v VALUES (?, ?, ?, ?, ?, ?)",
            {int64_t(-7), int64_t(1) << 62, 0.1 + 0.2, text, SqlBlob{bytes}, nullptr});
  const SqlRow row = db_->query("SELECT * FROM v").at(0);
  EXPECT_EQ(row.integer("i"), -7);
  EXPECT_EQ(row.integer("big"), int64_t(1) << 62);
  EXPECT_EQ(row.real("d"), 0.1 + 0.2);  // exactly: 17 significant digits each way
  EXPECT_EQ(row.text("s"), text);
  EXPECT_EQ(row.text("b"), bytes);
  EXPECT_TRUE(row.is_null("n"));
  EXPECT_THROW(row.integer("missing"), std::runtime_error);
}

TEST_P(DatabaseBackends, ChangesReturningAndOnConflict) {
  const SqlDialect dialect = db_->dialect();
  db_->exec("CREATE TABLE j (id " + sql_auto_id(dialect) + ", k TEXT UNIQUE, x INTEGER)");
  int64_t first = 0, second = 0, changed = -1, ignored = -1;
  db_->transaction([&](Database::Session& s) {
    first = s.query("INSERT INTO j (k, x) VALUES (?, 0) RETURNING id", {std::string("a")}).at(0).integer("id");
    second = s.query("INSERT INTO j (k, x) VALUES (?, 0) RETURNING id", {std::string("b")}).at(0).integer("id");
    s.exec("UPDATE j SET x = 1");
    changed = s.changes();
    s.exec("INSERT INTO j (k, x) VALUES (?, 5) ON CONFLICT DO NOTHING", {std::string("a")});
    ignored = s.changes();
  });
  EXPECT_LT(first, second);
  EXPECT_EQ(changed, 2);
  EXPECT_EQ(ignored, 0);
  EXPECT_EQ(db_->query("SELECT x FROM j WHERE k = 'a'").at(0).integer("x"), 1);
}

TEST_P(DatabaseBackends, AWriterWaitsForAnotherUntilTheBusyTimeout) {
  db_->exec("CREATE TABLE w (x INTEGER)");
  std::atomic<bool> holding{false}, release{false};
  std::thread holder([&] {
    db_->transaction([&](Database::Session& s) {
      s.exec("INSERT INTO w VALUES (1)");
      holding = true;
      while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    });
  });
  while (!holding) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto other = open(100);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(other->transaction([](Database::Session& s) { s.exec("INSERT INTO w VALUES (2)"); }),
               DatabaseBusyError);
  EXPECT_GE(seconds_since(start), 0.09);
  release = true;
  holder.join();
  other->transaction([](Database::Session& s) { s.exec("INSERT INTO w VALUES (2)"); });
  EXPECT_EQ(db_->query("SELECT COUNT(*) AS n FROM w").at(0).integer("n"), 2);
}

TEST_P(DatabaseBackends, TheClockIsUnixSeconds) {
  const double now = db_->query("SELECT " + sql_now_seconds(db_->dialect()) + " AS t").at(0).real("t");
  const double here = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_NEAR(now, here, 2.0);
}

TEST_P(DatabaseBackends, BlobsRoundTripAtAndAroundThePartSize) {
  BlobTable blobs(*db_);
  const size_t part = BlobTable::kPartBytes;
  for (size_t size : {size_t(0), size_t(1), part - 1, part, part + 1, 2 * part + 3}) {
    std::string bytes(size, '\0');
    for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((i * 2654435761u) >> 13);
    const std::string source = (dir_ / "source").string(), copy = (dir_ / "copy").string();
    std::ofstream(source, std::ios::binary) << bytes;
    const std::string key = "files/" + std::to_string(size);
    db_->transaction([&](Database::Session& s) { BlobTable::put_file(s, key, source); });
    ASSERT_TRUE(blobs.fetch_to_file(key, copy));
    EXPECT_EQ(read_bytes(copy), bytes) << size << " bytes";
    const size_t parts = size == 0 ? 1 : (size + part - 1) / part;
    EXPECT_EQ(db_->query("SELECT part FROM blobs WHERE key = ?", {key}).size(), parts) << size << " bytes";
    db_->transaction([&](Database::Session& s) { BlobTable::put_bytes(s, "same", bytes); });  // kept once
  }
  EXPECT_EQ(db_->query("SELECT bytes FROM blobs WHERE key = 'same'").at(0).text("bytes"), "");  // the first put's
  EXPECT_FALSE(blobs.fetch_to_file("no/such/key", (dir_ / "none").string()));
  EXPECT_FALSE(fs::exists(dir_ / "none"));
}

TEST(PostgresPlaceholders, AreNumberedOutsideQuotesOnly) {
  EXPECT_EQ(postgres_placeholders("SELECT '?', \"a?\", 'it''s ?' FROM t WHERE x = ? AND y = ?"),
            "SELECT '?', \"a?\", 'it''s ?' FROM t WHERE x = $1 AND y = $2");
}

class PostgresFaults : public DatabaseBackends {};
INSTANTIATE_TEST_SUITE_P(Backends, PostgresFaults, ::testing::Values(Backend::kPostgres), backend_name);

// The connection is cut in the middle of a transaction: the body runs again on a new connection, and what it
// wrote is committed once.
TEST_P(PostgresFaults, ABodyCutOffRunsAgainAndCommitsOnce) {
  db_->exec("CREATE TABLE r (x INTEGER)");
  auto killer = open(5000);
  int runs = 0;
  db_->transaction([&](Database::Session& s) {
    s.exec("INSERT INTO r VALUES (1)");
    if (++runs == 1) {
      const int64_t pid = s.query("SELECT pg_backend_pid() AS p").at(0).integer("p");
      killer->query("SELECT pg_terminate_backend(CAST(? AS INTEGER))", {pid});
      s.exec("INSERT INTO r VALUES (2)");  // the connection is gone: throws, and the body starts over
    }
  });
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(db_->query("SELECT COUNT(*) AS n FROM r").at(0).integer("n"), 1);
}

TEST_P(PostgresFaults, StatementsSurviveARestartAndADownServerIsUnavailableAfterBoundedRetries) {
  db_->exec("CREATE TABLE s (x INTEGER)");
  postgres_cluster().restart();
  db_->exec("INSERT INTO s VALUES (1)");  // reconnects
  postgres_cluster().kill_all();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(db_->query("SELECT x FROM s"), DatabaseUnavailableError);
  EXPECT_LT(seconds_since(start), 5.0);
  EXPECT_THROW(db_->query("SELECT x FROM s"), DatabaseUnavailableError);  // at once: it failed moments ago
  EXPECT_LT(seconds_since(start), 5.0);
  postgres_cluster().start();
  std::optional<int64_t> x;  // the same object, without a restart, once the fail-fast second is over
  for (int i = 0; i < 50 && !x; ++i) {
    try {
      x = db_->query("SELECT x FROM s").at(0).integer("x");
    } catch (const DatabaseUnavailableError&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  EXPECT_EQ(x, 1);
}

}  // namespace
}  // namespace mriscan::server_test
