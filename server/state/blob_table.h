// Files kept in the database itself, for replicas that share no disk (Database::holds_files(): PostgreSQL).
//
// Table `blobs`: (key, part, bytes), each part at most kPartBytes, so a file goes in and out one part at a time:
// neither side ever holds more than one part of it in memory, whatever its size. Writing is a step of the
// caller's transaction, so a file and the row that refers to it commit together or not at all (no orphans, no
// half-written file anyone can see). Keys: "models/v<n>.safetensors", "uploads/<sha256>". Blobs are immutable once
// committed (a model version's bytes never change; an upload's key is its content), so reading one part per
// statement outside a transaction reads one consistent file; the caller checks its SHA-256 all the same.
// What it is not: an object store (no listing, no ranges) or a cache (model_registry.h and upload_store.h keep
// their local copies).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "server/state/database.h"

namespace mriscan {

class BlobTable {
 public:
  static constexpr size_t kPartBytes = size_t(1) << 20;

  explicit BlobTable(Database& db);  // creates the table if needed

  // In the caller's transaction: stores `bytes` under `key` unless the key exists (content-addressed keys).
  static void put_bytes(Database::Session& session, const std::string& key, std::string_view bytes);
  // In the caller's transaction: stores the file at `path` under `key`, replacing what the key held, reading it
  // one part at a time. Throws std::runtime_error if the file cannot be read.
  static void put_file(Database::Session& session, const std::string& key, const std::string& path);
  // Writes the blob to `path` atomically (a temporary, fsync, rename), one part per statement; false if there is
  // no such key.
  bool fetch_to_file(const std::string& key, const std::string& path);

 private:
  Database& db_;
};

}  // namespace mriscan
