// Model versions v1..vn: files under <dir>/v<n>.safetensors, rows in the database, exactly one active, served
// through a shared_ptr that is swapped atomically.
//
// Where the files live: with SQLite, <dir> is on the state volume every replica shares. With PostgreSQL
// (Database::holds_files()), a version's file is stored in the database with its row (server/state/blob_table.h)
// and numbered by a sequence; <dir> is then this replica's cache, whose copy of v<n> is used only if its SHA-256
// is the one recorded in the row, and otherwise fetched again. Everything below holds for both.
//
// Registering copies the file to a temporary name unique to this process and fsyncs it; then ONE transaction
// (which holds SQLite's write lock, so no other process can pick the same number) reads the next number,
// renames the temporary to v<n>.safetensors and inserts the row. A crash before the commit leaves an orphan
// file that the next registration of that number overwrites, never a row pointing at a half-written file. Activation
// loads the new Classifier first (a bad file fails here and changes nothing), flips the `active` flag of every row in
// one transaction, and only then swaps the served pointer. Requests hold their own shared_ptr copy for their whole
// duration, so in-flight predictions finish on the old model, new ones use the new one, and the old one is freed when
// the last request lets go. On open, the active row's file is loaded; if it is missing or corrupt, the newest version
// that does load is served in its place ("the last good model") WITHOUT changing the recorded active version: the
// failure may be transient (a slow mount, a file being restored), so the next start tries the recorded one again, and
// only an operator's activation changes it. If none loads, the server runs without a model (not ready). /models shows
// both: `active` (recorded) and `serving`.
// Replicas (several processes on one state directory): the recorded active version in the database is the
// truth. follow_database(), called every `sync interval` by the App, loads and serves it when another process
// changed it, so an activation or retrain on any replica is served by all of them within that interval plus
// one model load. A version that fails to load there is retried every 10 s, the old one served meanwhile.
// What it is not: a training component; it never changes weights.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "infer/classifier.h"
#include "server/state/blob_table.h"
#include "server/state/database.h"

namespace mriscan {

struct ModelVersion {
  int64_t number = 0;  // n of "vn"
  std::string path;    // the file (SQLite), or its key in the database's blobs (PostgreSQL)
  std::string sha256;  // of the file; "" in rows written before the column existed
  std::string created_at;
  std::string source;  // "initial: <file>", "retrain job 3", ...
  nlohmann::json metrics;
  bool active = false;   // the recorded active version
  bool serving = false;  // the version this process serves (differs from `active` only after a failed load)

  std::string name() const { return "v" + std::to_string(number); }
  nlohmann::json to_json() const;  // for GET /models: public_metrics, no path
};

struct ActiveModel {
  int64_t number = 0;
  std::string name;
  std::shared_ptr<Classifier> classifier;
};

class ModelRegistry {
 public:
  // `import_options` describe files without mriscan metadata (a torchvision state dict's class names): such a
  // file is registered as the mriscan model file it describes (models/model_file.h). Every version's Classifier
  // leads its answers with the prediction set of level `set_alpha` (infer/classifier.h).
  ModelRegistry(Database& db, std::string dir, ModelLoadOptions import_options = {},
                double set_alpha = kDefaultSetAlpha);

  // Loads the active version (or the newest loadable one); returns a message describing what happened.
  std::string open();

  // Copies `source_path` in as the next version, with the metrics found in the file (or `metrics` if given).
  // Validates the file by loading it; throws std::runtime_error naming the file if it is not a model.
  ModelVersion register_file(const std::string& source_path, const std::string& source,
                             const nlohmann::json& metrics = nullptr);
  // Registers `files` (path, source) in order and records the last as active, only if the registry is empty,
  // all in one transaction: of replicas starting together on an empty state, exactly one imports. Files that
  // are not models are skipped, each reason appended to `problems`. Returns the versions registered.
  std::vector<ModelVersion> import_if_empty(const std::vector<std::pair<std::string, std::string>>& files,
                                            std::string& problems);

  // Loads, commits and swaps (see the header comment). Throws std::out_of_range for an unknown version.
  void activate(int64_t number);

  // Registration and activation as steps of a caller's transaction (a retrain records its job's outcome in the
  // same one, server/state/job_queue.h): stage() validates `source_path` and copies it to a durable temporary in
  // the models folder, unnumbered (throws naming the file if it is not a model); commit_staged() numbers it,
  // renames it to v<n>.safetensors (or copies it into the database) and inserts its row; record_active() sets the
  // active flag to `number` if `expected` is still the recorded active version; discard() removes the staged copy
  // (call it after the transaction, whatever its outcome).
  // A recorded activation is served by follow_database(), which loads the file.
  struct Staged {
    std::string tmp_path, source, sha256;
    nlohmann::json metrics;
  };
  Staged stage(const std::string& source_path, const std::string& source, const nlohmann::json& metrics);
  ModelVersion commit_staged(Database::Session& session, const Staged& staged);
  static bool record_active(Database::Session& session, int64_t number, std::optional<int64_t> expected);
  static void discard(const Staged& staged);

  // Serves the recorded active version if it is not the one served (see the header comment); returns a line
  // for the log when something changed or failed, "" otherwise.
  std::string follow_database();

  // The model new requests should use; null when none is loaded. Cheap: a shared_ptr copy under a mutex.
  std::shared_ptr<const ActiveModel> active() const;

  // The version's file on this host: the file itself (SQLite), or this replica's verified cached copy, fetched
  // from the database if needed (PostgreSQL). Throws std::runtime_error if it cannot be had.
  std::string local_file(const ModelVersion& version);

  std::vector<ModelVersion> list();
  std::optional<ModelVersion> find(int64_t number);
  bool empty();

 private:
  ModelVersion from_row(const SqlRow& row) const;
  std::shared_ptr<Classifier> load(const ModelVersion& version);  // from local_file()
  static std::string blob_key(int64_t number);
  void swap_in(int64_t number, std::shared_ptr<Classifier> classifier);

  Database& db_;
  std::string dir_;
  std::optional<BlobTable> blobs_;  // when the database holds the files
  std::mutex verified_mutex_;
  std::set<int64_t> verified_;  // versions whose cached copy this process has checked against their SHA-256
  ModelLoadOptions import_options_;  // how foreign files (torchvision's) are read when registered
  double set_alpha_;                 // the prediction sets' leading level, for every Classifier loaded
  std::mutex change_mutex_;  // one open, import, register_file, activation or follow at a time in this process
                            // (a retrain's commit runs in its job's transaction instead)
  mutable std::mutex active_mutex_;  // guards active_ only: held for a pointer copy, never during I/O
  std::shared_ptr<const ActiveModel> active_;
  int64_t follow_failed_number_ = 0;  // a recorded version that failed to load in follow_database()
  std::chrono::steady_clock::time_point follow_retry_at_;
};

// A version's recorded metrics as anyone may read them: the training configuration in them without its paths
// (train_config_without_paths). GET /models and a retraining job's result show these, never the recorded ones.
nlohmann::json public_metrics(const nlohmann::json& metrics);

// "v3" or "3" -> 3; nullopt for anything else.
std::optional<int64_t> parse_version(const std::string& text);

}  // namespace mriscan
