// Model versions and the atomic hot swap; see model_registry.h.
#include "server/model_registry.h"

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <stdexcept>

#include "data/content_hash.h"
#include "io/atomic_file.h"
#include "train/train_config.h"

namespace mriscan {
namespace fs = std::filesystem;

nlohmann::json ModelVersion::to_json() const {
  return {{"version", name()}, {"number", number},   {"created_at", created_at},       {"source", source},
          {"active", active},  {"serving", serving}, {"metrics", public_metrics(metrics)}};
}

nlohmann::json public_metrics(const nlohmann::json& metrics) {
  nlohmann::json shown = metrics;
  if (shown.is_object() && shown.contains("config")) shown["config"] = train_config_without_paths(shown["config"]);
  return shown;
}

std::optional<int64_t> parse_version(const std::string& text) {
  std::string digits = !text.empty() && (text[0] == 'v' || text[0] == 'V') ? text.substr(1) : text;
  if (digits.empty() || digits.size() > 12 || digits.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  int64_t number = std::stoll(digits);
  return number > 0 ? std::optional<int64_t>(number) : std::nullopt;
}

ModelRegistry::ModelRegistry(Database& db, std::string dir, ModelLoadOptions import_options, double set_alpha)
    : db_(db), dir_(std::move(dir)), import_options_(std::move(import_options)), set_alpha_(set_alpha) {
  fs::create_directories(dir_);
  // Staged copies that a crash left behind; younger than an hour, one may be another replica's in flight.
  const auto old_enough = fs::file_time_type::clock::now() - std::chrono::hours(1);
  for (const auto& entry : fs::directory_iterator(dir_)) {
    std::error_code error;
    if (entry.path().filename().string().rfind("incoming.safetensors.tmp.", 0) == 0 &&
        entry.last_write_time(error) < old_enough && !error)
      fs::remove(entry.path(), error);
  }
  db_.transaction([](Database::Session& session) {
    session.exec(
        "CREATE TABLE IF NOT EXISTS models ("
        " number INTEGER PRIMARY KEY, path TEXT NOT NULL, created_at TEXT NOT NULL, source TEXT NOT NULL,"
        " metrics TEXT NOT NULL, active INTEGER NOT NULL DEFAULT 0)");
    if (session.dialect() == SqlDialect::kPostgres) session.exec("CREATE SEQUENCE IF NOT EXISTS model_numbers");
  });
  db_.add_column_if_missing("models", "sha256", "TEXT");  // of the file; rows of older versions have none
  if (db_.holds_files()) blobs_.emplace(db_);
}

ModelVersion ModelRegistry::from_row(const SqlRow& row) const {
  ModelVersion version;
  version.number = row.integer("number");
  version.path = row.text("path");
  version.sha256 = row.text("sha256");
  version.created_at = row.text("created_at");
  version.source = row.text("source");
  version.metrics = nlohmann::json::parse(row.text("metrics"), nullptr, false);
  if (version.metrics.is_discarded()) version.metrics = nullptr;
  version.active = row.integer("active") != 0;
  auto served = active();
  version.serving = served && served->number == version.number;
  return version;
}

std::vector<ModelVersion> ModelRegistry::list() {
  std::vector<ModelVersion> versions;
  for (const SqlRow& row : db_.query("SELECT * FROM models ORDER BY number")) versions.push_back(from_row(row));
  return versions;
}

std::optional<ModelVersion> ModelRegistry::find(int64_t number) {
  auto rows = db_.query("SELECT * FROM models WHERE number = ?", {number});
  if (rows.empty()) return std::nullopt;
  return from_row(rows[0]);
}

bool ModelRegistry::empty() { return db_.query("SELECT number FROM models LIMIT 1").empty(); }

std::string ModelRegistry::open() {
  std::lock_guard<std::mutex> lock(change_mutex_);
  std::vector<ModelVersion> versions = list();
  if (versions.empty()) return "the model registry is empty";
  // The active one first, then newest to oldest.
  std::stable_sort(versions.begin(), versions.end(), [](const ModelVersion& a, const ModelVersion& b) {
    return a.active != b.active ? a.active : a.number > b.number;
  });
  const bool recorded = versions.front().active;
  std::string problems;
  for (const ModelVersion& version : versions) {
    std::shared_ptr<Classifier> classifier;
    try {
      classifier = load(version);
    } catch (const std::exception& error) {
      problems += " " + version.name() + ": " + error.what() + ";";
      continue;
    }
    if (!recorded) {  // no version was ever recorded active: record this one (a database error propagates)
      db_.transaction([&](Database::Session& session) {
        record_active(session, version.number, std::nullopt);
      });
    }
    swap_in(version.number, std::move(classifier));
    if (!recorded || version.active) return "serving " + version.name();
    follow_failed_number_ = versions.front().number;  // follow_database() retries it in 10 s
    follow_retry_at_ = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    return "serving " + version.name() + " in place of the recorded active version, which failed to load (" + problems +
           " ); it is tried again every 10 s and at the next start, and POST /models/" + version.name() +
           "/activate makes the switch permanent";
  }
  return "no registered model could be loaded:" + problems;
}

ModelRegistry::Staged ModelRegistry::stage(const std::string& source_path, const std::string& source,
                                           const nlohmann::json& metrics) {
  // Validates before anything is written.
  std::shared_ptr<Classifier> classifier = Classifier::load(source_path, import_options_, set_alpha_);
  for (const std::string& warning : classifier->warnings()) std::cerr << "serve: warning: " << warning << "\n";
  Staged staged;
  staged.source = source;
  staged.metrics = !metrics.is_null() ? metrics : classifier->metadata().value("metrics", nlohmann::json());
  staged.tmp_path = write_temporary_durably(
      (fs::path(dir_) / "incoming.safetensors").string(),
      [&](const std::string& tmp_path) { write_as_model_file(source_path, tmp_path, import_options_); });
  try {
    staged.sha256 = sha256_file_hex(staged.tmp_path);
  } catch (...) {
    discard(staged);
    throw;
  }
  return staged;
}

ModelVersion ModelRegistry::commit_staged(Database::Session& session, const Staged& staged) {
  ModelVersion version;
  const bool in_database = session.dialect() == SqlDialect::kPostgres;  // Database::holds_files()
  version.number = session.query(in_database ? "SELECT nextval('model_numbers') AS next"
                                             : "SELECT COALESCE(MAX(number), 0) + 1 AS next FROM models")
                       .at(0)
                       .integer("next");
  version.created_at = utc_now_iso8601();
  version.source = staged.source;
  version.metrics = staged.metrics;
  version.sha256 = staged.sha256;
  if (in_database) {  // the file goes in with its row; every replica's cache fetches it from there
    version.path = blob_key(version.number);
    BlobTable::put_file(session, version.path, staged.tmp_path);
  } else {
    version.path = (fs::path(dir_) / (version.name() + ".safetensors")).string();
    publish_temporary(staged.tmp_path, version.path);  // under the write lock: no other process has this number
  }
  session.exec("INSERT INTO models (number, path, created_at, source, metrics, active, sha256)"
               " VALUES (?, ?, ?, ?, ?, 0, ?)",
               {version.number, version.path, version.created_at, version.source, version.metrics.dump(),
                version.sha256});
  return version;
}

ModelVersion ModelRegistry::register_file(const std::string& source_path, const std::string& source,
                                          const nlohmann::json& metrics) {
  std::lock_guard<std::mutex> lock(change_mutex_);
  const Staged staged = stage(source_path, source, metrics);
  ModelVersion version;
  try {
    db_.transaction([&](Database::Session& session) { version = commit_staged(session, staged); });
  } catch (...) {
    discard(staged);
    throw;
  }
  discard(staged);
  return version;
}

void ModelRegistry::discard(const Staged& staged) {
  std::error_code ignored;
  fs::remove(staged.tmp_path, ignored);  // a published one was renamed away (SQLite) or copied into the database
}

std::vector<ModelVersion> ModelRegistry::import_if_empty(const std::vector<std::pair<std::string, std::string>>& files,
                                                         std::string& problems) {
  std::lock_guard<std::mutex> lock(change_mutex_);
  std::vector<Staged> staged;
  for (const auto& [path, source] : files) {
    try {
      staged.push_back(stage(path, source, nullptr));
    } catch (const std::exception& error) {
      problems += "skipped " + path + " (" + error.what() + "); ";
    }
  }
  auto remove_unpublished = [&] {
    for (const Staged& s : staged) discard(s);
  };
  std::vector<ModelVersion> versions;
  try {
    db_.transaction([&](Database::Session& session) {
      versions.clear();
      if (!session.query("SELECT number FROM models LIMIT 1").empty()) return;  // another process imported
      for (const Staged& s : staged) versions.push_back(commit_staged(session, s));
      if (!versions.empty()) record_active(session, versions.back().number, std::nullopt);
    });
  } catch (...) {
    remove_unpublished();
    throw;
  }
  remove_unpublished();
  return versions;
}

void ModelRegistry::activate(int64_t number) {
  std::lock_guard<std::mutex> lock(change_mutex_);
  auto rows = db_.query("SELECT * FROM models WHERE number = ?", {number});
  if (rows.empty()) throw std::out_of_range("unknown model version v" + std::to_string(number));
  ModelVersion version = from_row(rows[0]);
  std::shared_ptr<Classifier> classifier = load(version);  // 1. load (may throw: no change)
  db_.transaction([&](Database::Session& session) {                          // 2. commit the flag
    record_active(session, number, std::nullopt);
  });
  swap_in(number, std::move(classifier));  // 3. new requests see the new model
}

bool ModelRegistry::record_active(Database::Session& session, int64_t number, std::optional<int64_t> expected) {
  if (expected) {
    auto current = session.query("SELECT number FROM models WHERE active = 1");
    if (current.empty() || current[0].integer("number") != *expected) return false;
  }
  session.exec("UPDATE models SET active = CASE WHEN number = ? THEN 1 ELSE 0 END", {number});
  return true;
}

std::string ModelRegistry::follow_database() {
  auto recorded_row = [this] { return db_.query("SELECT * FROM models WHERE active = 1"); };
  auto rows = recorded_row();
  auto served = active();
  if (rows.empty() || (served && served->number == rows[0].integer("number"))) return "";  // the common case
  std::lock_guard<std::mutex> lock(change_mutex_);
  rows = recorded_row();  // again, under the lock: a local activation may have committed since the first read
  if (rows.empty()) return "";
  const int64_t recorded = rows[0].integer("number");
  served = active();
  if (served && served->number == recorded) return "";
  const auto now = std::chrono::steady_clock::now();
  if (recorded == follow_failed_number_ && now < follow_retry_at_) return "";
  try {
    swap_in(recorded, load(from_row(rows[0])));
  } catch (const std::exception& error) {
    follow_failed_number_ = recorded;
    follow_retry_at_ = now + std::chrono::seconds(10);
    return "v" + std::to_string(recorded) + " is the recorded active version but does not load here (" + error.what() +
           "); still serving " + (served ? served->name : std::string("nothing")) + ", retrying in 10 s";
  }
  follow_failed_number_ = 0;
  return "now serving v" + std::to_string(recorded) + ", the recorded active version";
}

std::string ModelRegistry::blob_key(int64_t number) { return "models/v" + std::to_string(number) + ".safetensors"; }

std::shared_ptr<Classifier> ModelRegistry::load(const ModelVersion& version) {
  return Classifier::load(local_file(version), {}, set_alpha_);
}

std::string ModelRegistry::local_file(const ModelVersion& version) {
  if (!blobs_) return version.path;
  // The local cache: <dir>/v<n>.safetensors, used only if its bytes are the recorded ones (a copy left by a
  // registration that rolled back, or a damaged one, is fetched again).
  const std::string cached = (fs::path(dir_) / (version.name() + ".safetensors")).string();
  {
    std::lock_guard<std::mutex> lock(verified_mutex_);
    if (verified_.count(version.number) && fs::exists(cached)) return cached;
  }
  std::error_code missing;
  if (!fs::exists(cached, missing) || sha256_file_hex(cached) != version.sha256) {
    if (!blobs_->fetch_to_file(version.path, cached))
      throw std::runtime_error(version.name() + "'s file is missing from the database");
    if (sha256_file_hex(cached) != version.sha256)
      throw std::runtime_error(version.name() + "'s file in the database does not match its recorded SHA-256");
  }
  std::lock_guard<std::mutex> lock(verified_mutex_);
  verified_.insert(version.number);  // hashed once per process: a version's bytes never change
  return cached;
}

void ModelRegistry::swap_in(int64_t number, std::shared_ptr<Classifier> classifier) {
  auto next = std::make_shared<ActiveModel>(ActiveModel{number, "v" + std::to_string(number), std::move(classifier)});
  std::lock_guard<std::mutex> lock(active_mutex_);
  active_ = std::move(next);
}

std::shared_ptr<const ActiveModel> ModelRegistry::active() const {
  std::lock_guard<std::mutex> lock(active_mutex_);
  return active_;
}

}  // namespace mriscan
