// Background scan of the training folder and the merged statistics; see dataset_stats.h.
#include "server/dataset_stats.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "data/dataset.h"
#include "io/image_io.h"
#include "data/content_hash.h"

namespace mriscan {
namespace {

int brightness_bin(double brightness) {
  int bin = static_cast<int>(brightness / (256.0 / DatasetStats::kBrightnessBins));
  return std::clamp(bin, 0, DatasetStats::kBrightnessBins - 1);
}

std::string resolution_key(int width, int height) { return std::to_string(width) + "x" + std::to_string(height); }

}  // namespace

DatasetStats::DatasetStats(std::string data_dir, UploadStore& uploads)
    : data_dir_(std::move(data_dir)), uploads_(uploads) {}

DatasetStats::~DatasetStats() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void DatasetStats::start() {
  if (data_dir_.empty() || thread_.joinable()) return;
  thread_ = std::thread([this] { scan(); });
}

// Messages shown by /dataset_stats name files relative to the data folder, never where it is on the server.
std::string DatasetStats::without_server_paths(std::string text) const {
  std::string root = data_dir_;  // sample paths are built from it as given
  while (!root.empty() && root.back() == '/') root.pop_back();
  if (root.empty()) return text;
  for (size_t at = text.find(root); at != std::string::npos; at = text.find(root, at))
    text.replace(at, root.size(), "<data>");
  return text;
}

void DatasetStats::scan() {
  // Same budget as retraining: a statistics page must not slow predictions down.
  setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 10);
  nlohmann::json result;
  try {
    const std::filesystem::path root(data_dir_);
    Dataset dataset = scan_dataset(std::filesystem::is_directory(root / "Training") ? (root / "Training").string()
                                                                                      : root.string());
    const int k = static_cast<int>(dataset.class_names.size());
    std::vector<int64_t> class_counts(k, 0);
    std::vector<std::vector<int64_t>> brightness(k, std::vector<int64_t>(kBrightnessBins, 0));  // (K, bins)
    std::map<std::string, int64_t> resolutions;
    std::map<std::string, int> hash_counts;
    std::vector<std::string> unreadable;
    auto publish = [&](size_t scanned, bool complete) {
      nlohmann::json classes = nlohmann::json::object(), hist = nlohmann::json::object();
      for (int c = 0; c < k; ++c) {
        classes[dataset.class_names[c]] = class_counts[c];
        hist[dataset.class_names[c]] = brightness[c];
      }
      int64_t duplicate_files = 0, duplicate_groups = 0;
      for (const auto& [hash, n] : hash_counts)
        if (n > 1) duplicate_files += n - 1, ++duplicate_groups;
      std::lock_guard<std::mutex> lock(mutex_);
      training_ = {{"root", std::filesystem::path(dataset.root).filename().string()},       {"class_names", dataset.class_names},
                   {"total", dataset.samples.size()}, {"scanned", scanned},
                   {"complete", complete},       {"class_counts", classes},
                   {"brightness", hist},         {"resolutions", resolutions},
                   {"duplicate_files", duplicate_files}, {"duplicate_groups", duplicate_groups},
                   {"unreadable", unreadable}};
      training_["hashes_internal"] = nlohmann::json::array();
      if (complete)
        for (const auto& [hash, n] : hash_counts) training_["hashes_internal"].push_back(hash);
    };
    publish(0, false);
    for (size_t i = 0; i < dataset.samples.size() && !stop_; ++i) {
      const Sample& sample = dataset.samples[i];
      try {
        std::vector<uint8_t> bytes = read_file_bytes(sample.path);
        Image image = decode_image(bytes.data(), bytes.size(), {}, sample.path);
        std::vector<float> luma = to_grayscale(image);  // (H, W)
        double sum = 0.0;
        for (float v : luma) sum += v;
        ++class_counts[sample.label];
        ++brightness[sample.label][brightness_bin(sum / luma.size())];
        ++resolutions[resolution_key(image.width, image.height)];
        ++hash_counts[sha256_hex(bytes.data(), bytes.size())];
      } catch (const std::exception& error) {
        unreadable.push_back(without_server_paths(error.what()));
      }
      if (i % 250 == 249) publish(i + 1, false);
    }
    publish(dataset.samples.size(), !stop_);
  } catch (const std::exception& error) {
    std::lock_guard<std::mutex> lock(mutex_);
    training_ = {{"complete", true}, {"error", without_server_paths(error.what())}};
  }
}

nlohmann::json DatasetStats::snapshot() {
  nlohmann::json training;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    training = training_;
  }
  if (data_dir_.empty()) training = {{"complete", true}, {"error", "the server was started without --data"}};
  if (training.is_null()) training = {{"complete", false}};  // asked before the scan's first publish
  std::set<std::string> training_hashes;
  if (training.contains("hashes_internal")) {
    for (const auto& hash : training["hashes_internal"]) training_hashes.insert(hash.get<std::string>());
    training.erase("hashes_internal");
  }

  // Uploads, from their validation-time records.
  nlohmann::json upload_counts = nlohmann::json::object(), upload_brightness = nlohmann::json::object();
  std::map<std::string, int64_t> upload_resolutions;
  int64_t uploads_duplicating_training = 0;
  std::vector<UploadRecord> records = uploads_.records();
  for (const UploadRecord& record : records) {
    upload_counts[record.label] = upload_counts.value(record.label, 0) + 1;
    if (!upload_brightness.contains(record.label))
      upload_brightness[record.label] = std::vector<int64_t>(kBrightnessBins, 0);
    auto& bins = upload_brightness[record.label];
    const int bin = brightness_bin(record.brightness);
    bins[bin] = bins[bin].get<int64_t>() + 1;
    ++upload_resolutions[resolution_key(record.width, record.height)];
    if (training_hashes.count(record.sha256)) ++uploads_duplicating_training;
  }

  nlohmann::json combined = nlohmann::json::object();
  if (training.contains("class_counts"))
    for (const auto& [name, n] : training["class_counts"].items()) combined[name] = n;
  for (const auto& [name, n] : upload_counts.items()) combined[name] = combined.value(name, 0) + n.get<int64_t>();

  nlohmann::json edges = nlohmann::json::array();
  for (int b = 0; b <= kBrightnessBins; ++b) edges.push_back(b * 256 / kBrightnessBins);
  return {{"training", training},
          {"uploads",
           {{"total", records.size()},
            {"class_counts", upload_counts},
            {"brightness", upload_brightness},
            {"resolutions", upload_resolutions},
            {"duplicates_of_training_files", uploads_duplicating_training}}},
          {"class_distribution", combined},
          {"brightness_bin_edges", edges},
          {"complete", training.value("complete", false)}};
}

}  // namespace mriscan
