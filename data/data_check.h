// `mriscan data check`: an audit of a dataset folder before anyone trains on it or quotes a test accuracy.
//
// For every image file: decodability, size, mean brightness, an exact fingerprint (SHA-256 of the bytes,
// data/content_hash.h) and a perceptual one (64-bit pHash plus a 32x32 thumbnail, data/image_hash.h).
// From those: counts per split and class, unreadable files, byte-identical groups, near-duplicate pairs (pHash
// Hamming distance <= threshold AND thumbnail correlation >= min_correlation, not byte-identical), and the two
// problems duplicates cause: leakage (the same image in Training and Testing inflates test accuracy) and label
// conflicts (the same image filed under two classes). It also lists the Testing images that have neither an
// exact nor a near copy in Training, for a de-duplicated test figure.
// What it is not: a cleaner; it never moves or deletes files.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace mriscan {

struct DataCheckOptions {
  std::string root;        // a dataset root holding split folders, or a single split folder
  int threads = 0;         // 0 = all cores
  double min_correlation = 0.9;  // near-duplicate confirmation: thumbnail correlation (data/image_hash.h)
  int near_threshold = 4;  // max pHash Hamming distance of a near-duplicate
};

struct CheckedFile {
  std::string split, class_name;
  std::string path;      // as found on disk
  std::string relative;  // relative to the root, e.g. "Testing/glioma/Te-gl_0001.jpg"
  bool readable = false;
  std::string error;     // why not readable
  int width = 0, height = 0;
  double brightness = 0.0;  // mean luma, 0..255
  uint64_t byte_count = 0;
  std::string content_hash;  // SHA-256 of the file bytes (data/content_hash.h); empty when the file could not be read
  std::vector<float> thumbnail;  // (32 * 32) normalized, for confirming near-duplicates
  uint64_t phash = 0;  // perceptual hash (data/image_hash.h)
};

struct NearPair {
  int a = 0, b = 0;  // indices into DataCheckReport::files, a < b
  int distance = 0;          // pHash Hamming distance
  float correlation = 0.0f;  // thumbnail correlation
};

struct DataCheckReport {
  std::string root;
  std::vector<std::string> splits;       // split names ("Training", "Testing"), or the folder name of one split
  std::vector<std::string> class_names;  // union over splits, sorted
  std::vector<CheckedFile> files;
  std::vector<std::string> warnings;
  std::vector<std::vector<int>> exact_groups;  // byte-identical files (>= 2 each), indices into files
  std::vector<NearPair> near_pairs;            // near-duplicates that are not byte-identical
  std::string training_split, testing_split;   // empty when not present
  std::vector<int> dedup_testing;              // Testing files with no exact or near copy in Training
  int threads = 0, near_threshold = 0;
  double min_correlation = 0.0;
  double seconds = 0.0;

  nlohmann::json to_json() const;
  std::string to_text() const;  // the human-readable tables
};

// `progress(done, total)` is called from worker threads now and then (may be empty).
DataCheckReport run_data_check(const DataCheckOptions& options,
                               const std::function<void(int, int)>& progress = {});

}  // namespace mriscan
