// Uploaded training scans: validated, content-addressed, recorded in the database, handed to retraining as samples.
//
// A request's files are all decoded (with the server's decode limits) and the label checked against the model's
// classes BEFORE anything is written: one bad file rejects the whole request and nothing is kept. Accepted bytes
// are stored as <dir>/<sha256 of the bytes> (temporary name, fsync, rename), so no name from the client ever
// reaches the file system and the same scan uploaded twice, even concurrently, is stored once; the second copy
// is reported as a duplicate (with the label it already has). The database row is written last, in one
// transaction for the whole request.
// Several writers of one scan (threads, or replicas on one state directory) share its file, so whether a file
// may go is decided under the database's write lock: a writer whose row transaction failed removes a file it
// created only if no row refers to it, and a writer inserts a row only after checking, in the same transaction,
// that the file is in place (writing it again if such a removal came between its write and its commit).
// A crash between file and row leaves only unreferenced files, which `UploadStore` removes when it opens, once
// they are an hour old: a younger one may be another replica's upload in flight, and no request takes an hour.
// When the database holds the files (PostgreSQL, Database::holds_files()), a scan's bytes are inserted into it in
// the same transaction as its row (server/state/blob_table.h): nothing is written before, so nothing is left
// over; <dir> is then a local cache that samples() fills for retraining, each copy checked by its hash.
// A DICOM file is not stored as sent: what is stored (and hashed) is a PNG of its decoded 8-bit pixels, the image the
// model sees before resizing, so that no attribute of the file (a patient's name, IDs, dates, institution, free
// text: docs/dicom.md) reaches the disk, the database or a response.
// What it is not: an image database; the rows hold only the hash, label, size and brightness, never pixels.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "io/decode_budget.h"
#include "io/image_io.h"
#include "server/state/blob_table.h"
#include "server/state/database.h"

namespace mriscan {

struct UploadFile {
  std::string filename;  // as sent by the client: for messages only, never used as a path
  std::string bytes;
};

struct UploadItem {
  std::string filename;
  std::string sha256;
  std::string status;  // "stored" or "duplicate"
  std::string label;   // the stored label (for a duplicate: the label it was first stored with)
  int width = 0, height = 0;
};

// A rejected request: every problem found, one entry per offending file ({"file", "error"}).
struct UploadRejected : std::runtime_error {
  UploadRejected(const std::string& message, nlohmann::json problems, int status = 400)
      : std::runtime_error(message), problems(std::move(problems)), status(status) {}
  nlohmann::json problems;
  int status;  // 415 when every problem is an unsupported format, else 400
};

struct UploadRecord {
  std::string sha256, label, created_at;
  int width = 0, height = 0;
  double brightness = 0.0;  // mean luma in [0, 255]
};

class UploadStore {
 public:
  UploadStore(Database& db, std::string dir, DecodeLimits limits);

  // An upload in two steps, which another writer may come between. All-or-nothing: prepare throws UploadRejected
  // (nothing stored) if the label is not one of `class_names` or any file is empty or does not decode within the
  // limits, and DecodeBudgetExceeded (nothing stored) if decoding the files would cost more than `budget` (none:
  // unbounded); else it writes the new scans' files. commit records their rows in one transaction (removing, if
  // that fails, the files prepare created that no row refers to). `files` must outlive the Prepared.
  struct Prepared {
    // A file of a request that decoded: its item (status "stored" until found to be a duplicate), its mean
    // brightness and the bytes to store: the request's, or for a DICOM file the PNG of its pixels.
    struct Checked {
      UploadItem item;
      double brightness = 0.0;
      const std::string* bytes = nullptr;  // the request's file
      std::string png_of_dicom;            // (empty unless the file is DICOM)
      const std::string& stored() const { return png_of_dicom.empty() ? *bytes : png_of_dicom; }
    };
    std::vector<Checked> checked;
    std::vector<std::string> created;  // hashes whose file prepare() created
  };
  Prepared prepare(const std::vector<UploadFile>& files, const std::string& label,
                   const std::vector<std::string>& class_names, DecodeBudget* budget = nullptr);
  std::vector<UploadItem> commit(Prepared& prepared);

  std::vector<UploadRecord> records();
  int64_t count();
  // Uploads whose label is one of class_names, as training samples (label = index into class_names).
  std::vector<Sample> samples(const std::vector<std::string>& class_names);

 private:
  // The steps of prepare() and commit(), in order; see upload_store.cpp.
  std::vector<Prepared::Checked> check_files(const std::vector<UploadFile>& files, const std::string& label,
                                            DecodeBudget* budget);
  void write_new_files(std::vector<Prepared::Checked>& checked, std::vector<std::string>& created);
  void insert_rows(std::vector<Prepared::Checked>& checked);
  void write_upload_file(const Prepared::Checked& c);  // <dir>/<sha256>, atomically
  void remove_created_without_row(const std::vector<std::string>& created);  // after a failed step
  void remove_unreferenced_files();                                          // the sweep at start-up
  void fetch_into_cache(const std::string& sha256, const std::string& path);

  Database& db_;
  std::string dir_;
  std::optional<BlobTable> blobs_;  // when the database holds the files
  DecodeLimits limits_;
};

}  // namespace mriscan
