// Files in the database, one part per row; see blob_table.h.
#include "server/state/blob_table.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "io/atomic_file.h"

namespace mriscan {

BlobTable::BlobTable(Database& db) : db_(db) {
  db_.transaction([&](Database::Session& session) {
    session.exec("CREATE TABLE IF NOT EXISTS blobs (key TEXT NOT NULL, part INTEGER NOT NULL, bytes " +
                 sql_blob_type(session.dialect()) + " NOT NULL, PRIMARY KEY (key, part))");
  });
}

void BlobTable::put_bytes(Database::Session& session, const std::string& key, std::string_view bytes) {
  if (!session.query("SELECT 1 FROM blobs WHERE key = ? AND part = 0", {key}).empty()) return;
  size_t part = 0;
  do {  // at least one part, so an empty file exists too
    const std::string_view piece = bytes.substr(std::min(bytes.size(), part * kPartBytes), kPartBytes);
    session.exec("INSERT INTO blobs (key, part, bytes) VALUES (?, ?, ?)",
                 {key, int64_t(part), SqlBlob{std::string(piece)}});
    ++part;
  } while (part * kPartBytes < bytes.size());
}

void BlobTable::put_file(Database::Session& session, const std::string& key, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read '" + path + "': " + std::strerror(errno));
  session.exec("DELETE FROM blobs WHERE key = ?", {key});
  SqlBlob piece{std::string(kPartBytes, '\0')};
  for (int64_t part = 0;; ++part) {
    piece.bytes.resize(kPartBytes);
    in.read(piece.bytes.data(), static_cast<std::streamsize>(kPartBytes));
    piece.bytes.resize(static_cast<size_t>(in.gcount()));
    if (in.bad()) throw std::runtime_error("cannot read '" + path + "': " + std::strerror(errno));
    if (piece.bytes.empty() && part > 0) break;
    session.exec("INSERT INTO blobs (key, part, bytes) VALUES (?, ?, ?)", {key, part, piece});
    if (piece.bytes.size() < kPartBytes) break;
  }
}

bool BlobTable::fetch_to_file(const std::string& key, const std::string& path) {
  const int64_t parts = db_.query("SELECT COUNT(*) AS n FROM blobs WHERE key = ?", {key}).at(0).integer("n");
  if (parts == 0) return false;
  write_file_atomically(path, [&](const std::string& tmp_path) {
    std::ofstream out(tmp_path, std::ios::binary);
    for (int64_t part = 0; part < parts; ++part) {
      auto rows = db_.query("SELECT bytes FROM blobs WHERE key = ? AND part = ?", {key, part});
      if (rows.empty()) throw std::runtime_error("the stored file '" + key + "' lacks part " + std::to_string(part));
      const std::string bytes = rows[0].text("bytes");
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    if (!out.flush()) throw std::runtime_error("cannot write '" + tmp_path + "': " + std::strerror(errno));
  });
  return true;
}

}  // namespace mriscan
