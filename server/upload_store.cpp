// Validated, content-addressed uploads; see upload_store.h.
#include "server/upload_store.h"

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "io/atomic_file.h"
#include "io/dicom_structure.h"
#include "data/content_hash.h"

namespace mriscan {
namespace fs = std::filesystem;

namespace {

bool is_sha256_name(const std::string& name) {
  return name.size() == 64 && std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

double mean_brightness(const Image& image) {
  std::vector<float> luma = to_grayscale(image);  // (H, W)
  double sum = 0.0;
  for (float v : luma) sum += v;
  return luma.empty() ? 0.0 : sum / luma.size();
}

void require_known_label(const std::string& label, const std::vector<std::string>& class_names) {
  if (std::find(class_names.begin(), class_names.end(), label) != class_names.end()) return;
  std::string known;
  for (const auto& name : class_names) known += (known.empty() ? "" : ", ") + name;
  throw UploadRejected("unknown label '" + label + "': expected one of " + known, nlohmann::json::array());
}

}  // namespace

UploadStore::UploadStore(Database& db, std::string dir, DecodeLimits limits)
    : db_(db), dir_(std::move(dir)), limits_(limits) {
  fs::create_directories(dir_);
  db_.transaction([](Database::Session& session) {
    session.exec(
        "CREATE TABLE IF NOT EXISTS uploads ("
        " sha256 TEXT PRIMARY KEY, label TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,"
        " brightness DOUBLE PRECISION NOT NULL, bytes INTEGER NOT NULL, created_at TEXT NOT NULL)");
  });
  if (db_.holds_files()) blobs_.emplace(db_);
  remove_unreferenced_files();
}

void UploadStore::remove_unreferenced_files() {
  std::set<std::string> known;
  for (const SqlRow& row : db_.query("SELECT sha256 FROM uploads")) known.insert(row.text("sha256"));
  const auto old_enough = fs::file_time_type::clock::now() - std::chrono::hours(1);
  for (const auto& entry : fs::directory_iterator(dir_)) {
    const std::string name = entry.path().filename().string();
    if (is_sha256_name(name) && known.count(name)) continue;
    std::error_code error;  // *.tmp or a crash leftover; another process may remove it first
    if (entry.last_write_time(error) < old_enough && !error) fs::remove(entry.path(), error);
  }
}

// Nothing is written unless every file is an image; then the new scans' files (each atomically).
UploadStore::Prepared UploadStore::prepare(const std::vector<UploadFile>& files, const std::string& label,
                                           const std::vector<std::string>& class_names, DecodeBudget* budget) {
  require_known_label(label, class_names);
  if (files.empty()) throw UploadRejected("no files in the request (multipart field 'files')", nlohmann::json::array());
  Prepared prepared;
  prepared.checked = check_files(files, label, budget);
  try {
    write_new_files(prepared.checked, prepared.created);
  } catch (...) {
    remove_created_without_row(prepared.created);
    throw;
  }
  return prepared;
}

// One transaction for the rows, which also re-checks each hash (ON CONFLICT DO NOTHING) in case another process
// stored it meanwhile.
std::vector<UploadItem> UploadStore::commit(Prepared& prepared) {
  try {
    insert_rows(prepared.checked);
  } catch (...) {
    remove_created_without_row(prepared.created);
    throw;
  }
  std::vector<UploadItem> items;
  for (Prepared::Checked& c : prepared.checked) items.push_back(std::move(c.item));
  return items;
}

// Every file decoded (within the limits and the budget) and hashed, or UploadRejected listing each one that is
// not an image; a budget that runs out refuses the whole request (DecodeBudgetExceeded), not one file.
std::vector<UploadStore::Prepared::Checked> UploadStore::check_files(const std::vector<UploadFile>& files,
                                                           const std::string& label, DecodeBudget* budget) {
  std::vector<Prepared::Checked> checked;
  nlohmann::json problems = nlohmann::json::array();
  size_t unsupported = 0;  // problems that are a format other than JPEG, PNG or DICOM
  for (const UploadFile& file : files) {
    try {
      if (file.bytes.empty()) throw ImageError("empty file");
      const auto* data = reinterpret_cast<const uint8_t*>(file.bytes.data());
      Image image = decode_image(data, file.bytes.size(), limits_, "'" + file.filename + "'", budget);
      Prepared::Checked c;
      c.bytes = &file.bytes;
      if (is_dicom_part10(data, file.bytes.size())) {  // the pixels only, never the file's attributes
        const std::vector<uint8_t> png = encode_png(image);
        c.png_of_dicom.assign(png.begin(), png.end());
      }
      c.item = {file.filename, sha256_hex(c.stored()), "stored", label, image.width, image.height};
      c.brightness = mean_brightness(image);
      checked.push_back(std::move(c));
    } catch (const DecodeBudgetExceeded&) {
      throw;
    } catch (const ImageError& error) {
      problems.push_back({{"file", file.filename}, {"error", error.what()}});
      if (dynamic_cast<const UnsupportedImageFormat*>(&error)) ++unsupported;
    }
  }
  if (!problems.empty())
    throw UploadRejected(std::to_string(problems.size()) + " of " + std::to_string(files.size()) +
                             " files are not valid images (JPEG, PNG or DICOM); nothing was stored",
                         problems, unsupported == problems.size() ? 415 : 400);
  return checked;
}

// Each new scan's file, written atomically; a scan seen earlier in this request or already recorded becomes a
// duplicate (with the label it was stored with). `created` gets the hashes whose file did not exist before.
void UploadStore::write_new_files(std::vector<Prepared::Checked>& checked, std::vector<std::string>& created) {
  std::set<std::string> seen_in_request;
  for (Prepared::Checked& c : checked) {
    if (!seen_in_request.insert(c.item.sha256).second) {
      c.item.status = "duplicate";
      continue;
    }
    auto existing = db_.query("SELECT label FROM uploads WHERE sha256 = ?", {c.item.sha256});
    if (!existing.empty()) {
      c.item.status = "duplicate";
      c.item.label = existing[0].text("label");
      continue;
    }
    if (blobs_) continue;  // the bytes go into the database with the row (insert_rows)
    const bool existed = fs::exists(fs::path(dir_) / c.item.sha256);
    write_upload_file(c);
    if (!existed) created.push_back(c.item.sha256);
  }
}

void UploadStore::write_upload_file(const Prepared::Checked& c) {
  write_file_atomically((fs::path(dir_) / c.item.sha256).string(), [&](const std::string& tmp_path) {
    std::ofstream out(tmp_path, std::ios::binary);
    out.write(c.stored().data(), static_cast<std::streamsize>(c.stored().size()));
    if (!out.flush()) throw std::runtime_error("cannot write an upload: " + std::string(std::strerror(errno)));
  });
}

// The stored scans' rows, in one transaction; a hash another process recorded meanwhile becomes a duplicate.
// Each row is inserted only with its file in place, checked under the write lock: another writer of the same scan
// whose row transaction failed may have removed the file since prepare() wrote it (remove_created_without_row),
// and then it is written again here.
// With the files in the database, each row's bytes go in with it instead.
void UploadStore::insert_rows(std::vector<Prepared::Checked>& checked) {
  const std::string now = utc_now_iso8601();
  const std::vector<Prepared::Checked> before = checked;  // the body may run again (database.h)
  db_.transaction([&](Database::Session& session) {
    checked = before;
    for (Prepared::Checked& c : checked) {
      if (c.item.status != "stored") continue;
      session.exec("INSERT INTO uploads (sha256, label, width, height, brightness, bytes, created_at)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                   {c.item.sha256, c.item.label, int64_t(c.item.width), int64_t(c.item.height), c.brightness,
                    int64_t(c.stored().size()), now});
      if (session.changes() == 0) {
        c.item.status = "duplicate";
        c.item.label = session.query("SELECT label FROM uploads WHERE sha256 = ?", {c.item.sha256}).at(0).text("label");
        continue;
      }
      if (blobs_) {
        BlobTable::put_bytes(session, "uploads/" + c.item.sha256, c.stored());
        continue;
      }
      std::error_code error;
      const fs::path path = fs::path(dir_) / c.item.sha256;
      if (fs::file_size(path, error) != c.stored().size() || error) write_upload_file(c);
    }
  });
}

// After a failure: removes the files this call created that no row refers to, each decided under the write lock,
// so that no row can be committed between the check and the removal (a writer that committed later re-creates its
// file in its own transaction, see insert_rows).
void UploadStore::remove_created_without_row(const std::vector<std::string>& created) {
  for (const std::string& sha : created) {
    try {
      db_.transaction([&](Database::Session& session) {
        if (session.query("SELECT 1 FROM uploads WHERE sha256 = ?", {sha}).empty()) fs::remove(fs::path(dir_) / sha);
      });
    } catch (...) {
      // the database is failing too: the file stays, and the sweep at a start an hour later removes it
    }
  }
}

std::vector<UploadRecord> UploadStore::records() {
  std::vector<UploadRecord> records;
  for (const SqlRow& row :
       db_.query("SELECT sha256, label, width, height, brightness, created_at FROM uploads ORDER BY created_at")) {
    records.push_back({row.text("sha256"), row.text("label"), row.text("created_at"),
                       static_cast<int>(row.integer("width")), static_cast<int>(row.integer("height")),
                       row.real("brightness")});
  }
  return records;
}

int64_t UploadStore::count() { return db_.query("SELECT COUNT(*) AS n FROM uploads").at(0).integer("n"); }

std::vector<Sample> UploadStore::samples(const std::vector<std::string>& class_names) {
  std::vector<Sample> samples;
  for (const UploadRecord& record : records()) {
    auto found = std::find(class_names.begin(), class_names.end(), record.label);
    if (found == class_names.end()) continue;
    const std::string path = (fs::path(dir_) / record.sha256).string();
    if (blobs_) fetch_into_cache(record.sha256, path);
    samples.push_back({path, static_cast<int>(found - class_names.begin())});
  }
  return samples;
}

// A scan's local copy, fetched from the database unless the cached one has the right content; one at a time, so
// memory holds one part of one scan whatever the number of uploads.
void UploadStore::fetch_into_cache(const std::string& sha256, const std::string& path) {
  std::error_code missing;
  if (fs::exists(path, missing) && sha256_file_hex(path) == sha256) return;
  if (!blobs_->fetch_to_file("uploads/" + sha256, path) || sha256_file_hex(path) != sha256)
    throw std::runtime_error("the upload " + sha256 + " is missing from the database or damaged");
}

}  // namespace mriscan
