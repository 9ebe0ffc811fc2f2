// Validated, content-addressed uploads; see upload_store.h.
#include "server/upload_store.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "io/atomic_file.h"
#include "server/sha256.h"

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

}  // namespace

UploadStore::UploadStore(Database& db, std::string dir, DecodeLimits limits)
    : db_(db), dir_(std::move(dir)), limits_(limits) {
  fs::create_directories(dir_);
  db_.exec(
      "CREATE TABLE IF NOT EXISTS uploads ("
      " sha256 TEXT PRIMARY KEY, label TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,"
      " brightness REAL NOT NULL, bytes INTEGER NOT NULL, created_at TEXT NOT NULL)");
  remove_unreferenced_files();
}

void UploadStore::remove_unreferenced_files() {
  std::set<std::string> known;
  for (const SqlRow& row : db_.query("SELECT sha256 FROM uploads")) known.insert(row.text("sha256"));
  for (const auto& entry : fs::directory_iterator(dir_)) {
    const std::string name = entry.path().filename().string();
    if (!is_sha256_name(name) || !known.count(name)) fs::remove(entry.path());  // *.tmp or a crash leftover
  }
}

std::vector<UploadItem> UploadStore::add(const std::vector<UploadFile>& files, const std::string& label,
                                         const std::vector<std::string>& class_names) {
  if (std::find(class_names.begin(), class_names.end(), label) == class_names.end()) {
    std::string known;
    for (const auto& name : class_names) known += (known.empty() ? "" : ", ") + name;
    throw UploadRejected("unknown label '" + label + "': expected one of " + known, nlohmann::json::array());
  }
  if (files.empty()) throw UploadRejected("no files in the request (multipart field 'files')", nlohmann::json::array());

  // 1. Validate every file and hash it; nothing is written yet.
  struct Checked {
    UploadItem item;
    double brightness = 0.0;
    const std::string* bytes = nullptr;
  };
  std::vector<Checked> checked;
  nlohmann::json problems = nlohmann::json::array();
  for (const UploadFile& file : files) {
    try {
      if (file.bytes.empty()) throw ImageError("empty file");
      Image image = decode_image(reinterpret_cast<const uint8_t*>(file.bytes.data()), file.bytes.size(), limits_,
                                 "'" + file.filename + "'");
      Checked c;
      c.item = {file.filename, sha256_hex(file.bytes), "stored", label, image.width, image.height};
      c.brightness = mean_brightness(image);
      c.bytes = &file.bytes;
      checked.push_back(std::move(c));
    } catch (const ImageError& error) {
      problems.push_back({{"file", file.filename}, {"error", error.what()}});
    }
  }
  if (!problems.empty())
    throw UploadRejected(std::to_string(problems.size()) + " of " + std::to_string(files.size()) +
                             " files are not valid images; nothing was stored",
                         problems);

  // 2. Duplicates: already stored, or repeated within this request.
  std::map<std::string, std::string> existing_labels;
  for (const SqlRow& row : db_.query("SELECT sha256, label FROM uploads"))
    existing_labels[row.text("sha256")] = row.text("label");
  std::set<std::string> seen_in_request;
  for (Checked& c : checked) {
    auto found = existing_labels.find(c.item.sha256);
    if (found != existing_labels.end()) {
      c.item.status = "duplicate";
      c.item.label = found->second;
    } else if (!seen_in_request.insert(c.item.sha256).second) {
      c.item.status = "duplicate";
    }
  }

  // 3. Files first (each atomically), then one transaction for all rows. If writing fails, remove what this
  //    request wrote; the rows never existed.
  std::vector<fs::path> written;
  try {
    for (const Checked& c : checked) {
      if (c.item.status != "stored") continue;
      fs::path path = fs::path(dir_) / c.item.sha256;
      write_file_atomically(path.string(), [&](const std::string& tmp_path) {
        std::ofstream out(tmp_path, std::ios::binary);
        out.write(c.bytes->data(), static_cast<std::streamsize>(c.bytes->size()));
        if (!out.flush()) throw std::runtime_error("cannot write upload " + tmp_path);
      });
      written.push_back(path);
    }
    const std::string now = utc_now_iso8601();
    db_.transaction([&](Database::Session& session) {
      for (const Checked& c : checked) {
        if (c.item.status != "stored") continue;
        session.exec("INSERT INTO uploads (sha256, label, width, height, brightness, bytes, created_at)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?)",
                     {c.item.sha256, c.item.label, int64_t(c.item.width), int64_t(c.item.height), c.brightness,
                      int64_t(c.bytes->size()), now});
      }
    });
  } catch (...) {
    for (const fs::path& path : written) fs::remove(path);
    throw;
  }
  std::vector<UploadItem> items;
  for (Checked& c : checked) items.push_back(std::move(c.item));
  return items;
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
    samples.push_back({(fs::path(dir_) / record.sha256).string(), static_cast<int>(found - class_names.begin())});
  }
  return samples;
}

}  // namespace mriscan
