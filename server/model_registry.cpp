// Model versions and the atomic hot swap; see model_registry.h.
#include "server/model_registry.h"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include "io/atomic_file.h"

namespace mriscan {
namespace fs = std::filesystem;

nlohmann::json ModelVersion::to_json() const {
  return {{"version", name()}, {"number", number},   {"created_at", created_at}, {"source", source},
          {"active", active},  {"serving", serving}, {"metrics", metrics}};
}

std::optional<int64_t> parse_version(const std::string& text) {
  std::string digits = !text.empty() && (text[0] == 'v' || text[0] == 'V') ? text.substr(1) : text;
  if (digits.empty() || digits.size() > 12 || digits.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  int64_t number = std::stoll(digits);
  return number > 0 ? std::optional<int64_t>(number) : std::nullopt;
}

ModelRegistry::ModelRegistry(Database& db, std::string dir) : db_(db), dir_(std::move(dir)) {
  fs::create_directories(dir_);
  db_.exec(
      "CREATE TABLE IF NOT EXISTS models ("
      " number INTEGER PRIMARY KEY, path TEXT NOT NULL, created_at TEXT NOT NULL, source TEXT NOT NULL,"
      " metrics TEXT NOT NULL, active INTEGER NOT NULL DEFAULT 0)");
}

ModelVersion ModelRegistry::from_row(const SqlRow& row) const {
  ModelVersion version;
  version.number = row.integer("number");
  version.path = row.text("path");
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
      classifier = Classifier::load(version.path);
    } catch (const std::exception& error) {
      problems += " " + version.name() + ": " + error.what() + ";";
      continue;
    }
    if (!recorded) {  // no version was ever recorded active: record this one (a database error propagates)
      db_.transaction([&](Database::Session& session) {
        session.exec("UPDATE models SET active = (number = ?)", {version.number});
      });
    }
    swap_in(version.number, std::move(classifier));
    if (!recorded || version.active) return "serving " + version.name();
    return "serving " + version.name() + " in place of the recorded active version, which failed to load (" +
           problems + " ); the next start tries it again, and POST /models/" + version.name() +
           "/activate makes the switch permanent";
  }
  return "no registered model could be loaded:" + problems;
}

ModelVersion ModelRegistry::register_file(const std::string& source_path, const std::string& source,
                                          const nlohmann::json& metrics) {
  std::lock_guard<std::mutex> lock(change_mutex_);
  std::shared_ptr<Classifier> classifier = Classifier::load(source_path);  // validates before anything is written
  ModelVersion version;
  version.number = db_.query("SELECT COALESCE(MAX(number), 0) + 1 AS next FROM models").at(0).integer("next");
  version.path = (fs::path(dir_) / (version.name() + ".safetensors")).string();
  version.created_at = utc_now_iso8601();
  version.source = source;
  version.metrics = !metrics.is_null() ? metrics : classifier->metadata().value("metrics", nlohmann::json());
  write_file_atomically(version.path, [&](const std::string& tmp_path) {
    fs::copy_file(source_path, tmp_path, fs::copy_options::overwrite_existing);
  });
  db_.exec("INSERT INTO models (number, path, created_at, source, metrics, active) VALUES (?, ?, ?, ?, ?, 0)",
           {version.number, version.path, version.created_at, version.source, version.metrics.dump()});
  return version;
}

void ModelRegistry::activate(int64_t number) {
  std::lock_guard<std::mutex> lock(change_mutex_);
  activate_locked(number);
}

bool ModelRegistry::activate_if_serving(int64_t number, int64_t expected) {
  std::lock_guard<std::mutex> lock(change_mutex_);
  auto served = active();
  if (!served || served->number != expected) return false;
  activate_locked(number);
  return true;
}

void ModelRegistry::activate_locked(int64_t number) {
  auto rows = db_.query("SELECT * FROM models WHERE number = ?", {number});
  if (rows.empty()) throw std::out_of_range("unknown model version v" + std::to_string(number));
  ModelVersion version = from_row(rows[0]);
  std::shared_ptr<Classifier> classifier = Classifier::load(version.path);  // 1. load (may throw: no change)
  db_.transaction([&](Database::Session& session) {                        // 2. commit the flag
    session.exec("UPDATE models SET active = (number = ?)", {number});
  });
  swap_in(number, std::move(classifier));  // 3. new requests see the new model
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
