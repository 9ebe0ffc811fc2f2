// GET /dataset_stats: what the training data looks like. Class distribution of the training split plus the
// uploads, histograms of mean brightness (per class) and of image resolution, and exact-duplicate counts (files
// with identical bytes, by SHA-256).
//
// The training folder is scanned once, on a background thread at low priority (decoding ~6k JPEGs takes
// seconds), and the result cached; until it finishes, the snapshot says `complete: false` with its progress.
// Uploads are not rescanned: their size and brightness were recorded when they were validated.
// What it is not: data validation for training (that is `mriscan data check`).
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/upload_store.h"

namespace mriscan {

class DatasetStats {
 public:
  static constexpr int kBrightnessBins = 32;  // width 8 over [0, 256)

  DatasetStats(std::string data_dir, UploadStore& uploads);
  ~DatasetStats();
  void start();  // launches the background scan (no-op without a data folder)
  nlohmann::json snapshot();

 private:
  std::string without_server_paths(std::string text) const;
  void scan();

  std::string data_dir_;
  UploadStore& uploads_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  nlohmann::json training_;  // the cached scan result (partial until complete)
};

}  // namespace mriscan
