// The dataset audit behind `mriscan data check` (what it reports and why: data/data_check.h). The command line
// is in tools/cmd_data_check.cpp; this file has no I/O besides reading the images.
//
// Cost: one pass decoding every file on N threads (7,000 small JPEGs take a few seconds), then an all-pairs pHash
// comparison. All-pairs is N^2/2 XOR+popcount = 25 million for 7,000 images, a few milliseconds; a BK-tree or
// multi-index hashing would only pay off at millions of images.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "data/data_check.h"
#include "data/dataset.h"
#include "data/content_hash.h"
#include "data/image_hash.h"
#include "io/image_io.h"

namespace fs = std::filesystem;

namespace mriscan {

namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

// A root holds split folders that hold class folders; a single split holds class folders that hold files. So DIR
// is a root exactly when one of its sub-folders has sub-folders of its own.
std::vector<std::pair<std::string, fs::path>> find_splits(const fs::path& root) {
  std::error_code error;
  if (!fs::is_directory(root, error)) throw std::runtime_error("'" + root.string() + "' is not a folder");
  std::vector<fs::path> children;
  for (const auto& entry : fs::directory_iterator(root))
    if (entry.is_directory() && entry.path().filename().string().rfind('.', 0) != 0) children.push_back(entry.path());
  std::sort(children.begin(), children.end());
  bool is_root = false;
  for (const fs::path& child : children)
    for (const auto& entry : fs::directory_iterator(child)) is_root = is_root || entry.is_directory();
  std::vector<std::pair<std::string, fs::path>> splits;
  if (is_root) {
    for (const fs::path& child : children) splits.emplace_back(child.filename().string(), child);
  } else {
    splits.emplace_back(fs::absolute(root).lexically_normal().parent_path().filename().string(), root);
    if (splits[0].first.empty()) splits[0].first = root.string();
  }
  return splits;
}

// Reads, fingerprints and measures one file; failures are recorded in the file, never thrown.
void inspect(CheckedFile& file) {
  try {
    const std::vector<uint8_t> bytes = read_file_bytes(file.path);
    file.byte_count = bytes.size();
    file.content_hash = sha256_hex(bytes.data(), bytes.size());
    const Image image = decode_image(bytes.data(), bytes.size(), {}, "'" + file.path + "'");
    file.width = image.width;
    file.height = image.height;
    const std::vector<float> gray = to_grayscale(image);  // (H, W)
    file.brightness = std::accumulate(gray.begin(), gray.end(), 0.0) / static_cast<double>(gray.size());
    file.phash = perceptual_hash(image);
    file.thumbnail = normalized_thumbnail(image);
    file.readable = true;
  } catch (const std::exception& error) {
    file.error = error.what();
  }
}

// Byte-identical groups: files with the same SHA-256 (data/content_hash.h), in path order.
std::vector<std::vector<int>> exact_groups(const std::vector<CheckedFile>& files) {
  std::map<std::string, std::vector<int>> by_hash;
  for (int i = 0; i < static_cast<int>(files.size()); ++i)
    if (files[i].byte_count > 0) by_hash[files[i].content_hash].push_back(i);
  std::vector<std::vector<int>> groups;
  for (auto& [hash, members] : by_hash)
    if (members.size() >= 2) groups.push_back(std::move(members));
  std::sort(groups.begin(), groups.end());
  return groups;
}

struct MinMeanMax {
  double min = std::numeric_limits<double>::infinity(), max = -std::numeric_limits<double>::infinity(), sum = 0;
  int count = 0;
  void add(double v) { min = std::min(min, v), max = std::max(max, v), sum += v, ++count; }
  double mean() const { return count ? sum / count : 0.0; }
  nlohmann::json json() const {
    return count ? nlohmann::json{{"min", min}, {"mean", mean()}, {"max", max}} : nlohmann::json(nullptr);
  }
  std::string text(int decimals) const {
    if (!count) return "-";
    char buffer[96];
    std::snprintf(buffer, sizeof(buffer), "%.*f / %.*f / %.*f", decimals, min, decimals, mean(), decimals, max);
    return buffer;
  }
};

struct ClassStats {
  int count = 0, unreadable = 0;
  MinMeanMax width, height, brightness;
};

// Everything the two output formats show, derived once from the report.
struct Summary {
  std::map<std::string, std::map<std::string, ClassStats>> stats;  // split -> class -> stats
  int extra_copies = 0, files_in_groups = 0, cross_split_groups = 0, label_conflict_groups = 0;
  int testing_with_training_exact = 0, testing_with_training_any = 0;
  int near_cross_split = 0, near_label_conflicts = 0, near_clusters = 0;
  std::vector<int> conflict_groups;      // indices into exact_groups
  std::vector<int> conflict_near_pairs;  // indices into near_pairs
};

int find_root(std::vector<int>& parent, int i) {
  while (parent[i] != i) i = parent[i] = parent[parent[i]];  // path halving
  return i;
}

Summary summarize(const DataCheckReport& report) {
  Summary s;
  for (const CheckedFile& f : report.files) {
    ClassStats& c = s.stats[f.split][f.class_name];
    ++c.count;
    if (!f.readable) {
      ++c.unreadable;
      continue;
    }
    c.width.add(f.width), c.height.add(f.height), c.brightness.add(f.brightness);
  }
  std::set<int> testing_exact;
  for (size_t g = 0; g < report.exact_groups.size(); ++g) {
    const std::vector<int>& group = report.exact_groups[g];
    std::set<std::string> splits, classes;
    for (int i : group) splits.insert(report.files[i].split), classes.insert(report.files[i].class_name);
    s.files_in_groups += static_cast<int>(group.size());
    s.cross_split_groups += splits.size() > 1;
    if (classes.size() > 1) s.conflict_groups.push_back(static_cast<int>(g));
    if (!report.testing_split.empty() && splits.count(report.training_split))
      for (int i : group)
        if (report.files[i].split == report.testing_split) testing_exact.insert(i);
  }
  s.extra_copies = s.files_in_groups - static_cast<int>(report.exact_groups.size());
  s.label_conflict_groups = static_cast<int>(s.conflict_groups.size());
  s.testing_with_training_exact = static_cast<int>(testing_exact.size());

  std::vector<int> parent(report.files.size());
  std::iota(parent.begin(), parent.end(), 0);
  for (size_t p = 0; p < report.near_pairs.size(); ++p) {
    const CheckedFile &a = report.files[report.near_pairs[p].a], &b = report.files[report.near_pairs[p].b];
    s.near_cross_split += a.split != b.split;
    if (a.class_name != b.class_name) s.conflict_near_pairs.push_back(static_cast<int>(p));
    parent[find_root(parent, report.near_pairs[p].a)] = find_root(parent, report.near_pairs[p].b);
  }
  std::set<int> cluster_roots;
  for (const NearPair& pair : report.near_pairs) cluster_roots.insert(find_root(parent, pair.a));
  s.near_clusters = static_cast<int>(cluster_roots.size());
  s.near_label_conflicts = static_cast<int>(s.conflict_near_pairs.size());
  if (!report.testing_split.empty()) {
    int readable_testing = 0;
    for (const CheckedFile& f : report.files) readable_testing += f.split == report.testing_split && f.readable;
    s.testing_with_training_any = readable_testing - static_cast<int>(report.dedup_testing.size());
  }
  return s;
}

// 1. Every image file, split by split (scan_dataset: sorted, image extensions only, warnings for the odd ones out).
void list_files(const DataCheckOptions& options, DataCheckReport& report) {
  std::set<std::string> class_names;
  for (const auto& [split, dir] : find_splits(options.root)) {
    report.splits.push_back(split);
    const std::string name = lower(split);
    if (name == "training" || name == "train") report.training_split = split;
    if (name == "testing" || name == "test") report.testing_split = split;
    const Dataset dataset = scan_dataset(dir.string());
    for (const std::string& warning : dataset.warnings) report.warnings.push_back(split + ": " + warning);
    class_names.insert(dataset.class_names.begin(), dataset.class_names.end());
    for (const Sample& sample : dataset.samples) {
      CheckedFile file;
      file.split = split;
      file.class_name = dataset.class_names[sample.label];
      file.path = sample.path;
      file.relative = fs::path(sample.path).lexically_relative(options.root).generic_string();
      report.files.push_back(std::move(file));
    }
  }
  report.class_names.assign(class_names.begin(), class_names.end());
  if (report.training_split.empty() || report.testing_split.empty()) {  // leakage needs both
    report.training_split.clear();
    report.testing_split.clear();
  }
}

// 2. Inspect every file on report.threads threads; each thread claims the next file index (files are independent).
void inspect_all(DataCheckReport& report, const std::function<void(int, int)>& progress) {
  const int total = static_cast<int>(report.files.size());
  std::atomic<int> next{0}, done{0};
  std::mutex progress_mutex;
  auto work = [&] {
    for (int i = next++; i < total; i = next++) {
      inspect(report.files[i]);
      const int finished = ++done;
      if (progress && (finished % 250 == 0 || finished == total)) {
        std::lock_guard<std::mutex> lock(progress_mutex);
        progress(finished, total);
      }
    }
  };
  std::vector<std::thread> workers;
  for (int t = 0; t < report.threads; ++t) workers.emplace_back(work);
  for (std::thread& worker : workers) worker.join();
}

// 3. Near-duplicates among readable files that are not already byte-identical (every pair: see the file header).
void find_near_pairs(const DataCheckOptions& options, DataCheckReport& report) {
  const int total = static_cast<int>(report.files.size());
  std::vector<int> group_of(report.files.size(), -1);
  for (size_t g = 0; g < report.exact_groups.size(); ++g)
    for (int i : report.exact_groups[g]) group_of[i] = static_cast<int>(g);
  for (int a = 0; a < total; ++a) {
    if (!report.files[a].readable) continue;
    for (int b = a + 1; b < total; ++b) {
      if (!report.files[b].readable || (group_of[a] >= 0 && group_of[a] == group_of[b])) continue;
      const int distance = hamming_distance(report.files[a].phash, report.files[b].phash);
      if (distance > options.near_threshold) continue;
      const float correlation = thumbnail_correlation(report.files[a].thumbnail, report.files[b].thumbnail);
      if (correlation >= options.min_correlation) report.near_pairs.push_back({a, b, distance, correlation});
    }
  }
}

// 4. Testing files with neither an exact nor a near copy in Training.
void find_dedup_testing(DataCheckReport& report) {
  if (report.testing_split.empty()) return;
  std::vector<bool> has_copy(report.files.size(), false);
  auto link = [&](int a, int b) {
    if (report.files[a].split == report.testing_split && report.files[b].split == report.training_split)
      has_copy[a] = true;
  };
  for (const std::vector<int>& group : report.exact_groups)
    for (int a : group)
      for (int b : group) link(a, b);
  for (const NearPair& pair : report.near_pairs) link(pair.a, pair.b), link(pair.b, pair.a);
  for (size_t i = 0; i < report.files.size(); ++i)
    if (report.files[i].split == report.testing_split && report.files[i].readable && !has_copy[i])
      report.dedup_testing.push_back(static_cast<int>(i));
}

}  // namespace

DataCheckReport run_data_check(const DataCheckOptions& options, const std::function<void(int, int)>& progress) {
  const auto started = std::chrono::steady_clock::now();
  DataCheckReport report;
  report.root = options.root;
  report.near_threshold = options.near_threshold;
  report.min_correlation = options.min_correlation;
  report.threads = options.threads > 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  list_files(options, report);
  inspect_all(report, progress);
  report.exact_groups = exact_groups(report.files);
  find_near_pairs(options, report);
  find_dedup_testing(report);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return report;
}

nlohmann::json DataCheckReport::to_json() const {
  const Summary s = summarize(*this);
  nlohmann::json splits_json = nlohmann::json::object();
  for (const auto& [split, classes] : s.stats) {
    int split_total = 0;
    nlohmann::json classes_json = nlohmann::json::object();
    for (const auto& [name, c] : classes) {
      split_total += c.count;
      classes_json[name] = {{"count", c.count}, {"unreadable", c.unreadable}, {"width", c.width.json()},
                            {"height", c.height.json()}, {"brightness", c.brightness.json()}};
    }
    splits_json[split] = {{"total", split_total}, {"classes", classes_json}};
  }
  nlohmann::json unreadable = nlohmann::json::array(), groups = nlohmann::json::array(),
                 pairs = nlohmann::json::array();
  for (const CheckedFile& f : files)
    if (!f.readable) unreadable.push_back({{"path", f.relative}, {"error", f.error}});
  for (const std::vector<int>& group : exact_groups) {
    nlohmann::json members = nlohmann::json::array();
    for (int i : group) members.push_back(files[i].relative);
    groups.push_back(members);
  }
  for (const NearPair& pair : near_pairs)
    pairs.push_back({{"a", files[pair.a].relative},
                     {"b", files[pair.b].relative},
                     {"distance", pair.distance},
                     {"correlation", pair.correlation}});
  return {
      {"root", root},
      {"seconds", seconds},
      {"threads", threads},
      {"files", files.size()},
      {"class_names", class_names},
      {"splits", splits_json},
      {"unreadable", unreadable},
      {"warnings", warnings},
      {"exact_duplicates",
       {{"hash", "SHA-256 of the file bytes"},
        {"groups", exact_groups.size()},
        {"files_in_groups", s.files_in_groups},
        {"extra_copies", s.extra_copies},
        {"cross_split_groups", s.cross_split_groups},
        {"label_conflict_groups", s.label_conflict_groups},
        {"testing_with_training_copy", s.testing_with_training_exact},
        {"list", groups}}},
      {"near_duplicates",
       {{"hash", "pHash: DCT of 32x32 grey, 8x8 low frequencies, 64 bits"},
        {"threshold", near_threshold},
        {"min_correlation", min_correlation},
        {"pairs", near_pairs.size()},
        {"clusters", s.near_clusters},
        {"cross_split_pairs", s.near_cross_split},
        {"label_conflict_pairs", s.near_label_conflicts},
        {"list", pairs}}},
      {"testing_with_training_copy_exact_or_near", s.testing_with_training_any},
      {"dedup_testing_count", dedup_testing.size()},
  };
}

std::string DataCheckReport::to_text() const {
  const Summary s = summarize(*this);
  std::ostringstream out;
  char line[256];
  out << "Dataset " << root << ": " << files.size() << " image files in " << splits.size() << " split(s), checked in "
      << std::fixed << std::setprecision(1) << seconds << " s on " << threads << " threads\n\n";

  std::snprintf(line, sizeof(line), "%-12s", "Counts");
  out << line;
  for (const std::string& name : class_names) std::snprintf(line, sizeof(line), " %11s", name.c_str()), out << line;
  out << "       total\n";
  for (const std::string& split : splits) {
    std::snprintf(line, sizeof(line), "%-12s", split.c_str());
    out << line;
    int split_total = 0;
    const auto split_stats = s.stats.find(split);
    for (const std::string& name : class_names) {
      int count = 0;
      if (split_stats != s.stats.end() && split_stats->second.count(name)) count = split_stats->second.at(name).count;
      split_total += count;
      std::snprintf(line, sizeof(line), " %11d", count), out << line;
    }
    std::snprintf(line, sizeof(line), " %11d\n", split_total), out << line;
  }

  out << "\nImage statistics (min / mean / max)\n";
  std::snprintf(line, sizeof(line), "  %-24s %-22s %-22s %s\n", "split/class", "width", "height", "mean brightness");
  out << line;
  for (const auto& [split, classes] : s.stats)
    for (const auto& [name, c] : classes) {
      std::snprintf(line, sizeof(line), "  %-24s %-22s %-22s %s\n", (split + "/" + name).c_str(),
                    c.width.text(0).c_str(), c.height.text(0).c_str(), c.brightness.text(1).c_str());
      out << line;
    }

  int unreadable = 0;
  for (const CheckedFile& f : files) unreadable += !f.readable;
  out << "\nUnreadable files (skipped): " << unreadable << "\n";
  for (const CheckedFile& f : files)
    if (!f.readable) out << "  " << f.relative << ": " << f.error << "\n";
  for (const std::string& warning : warnings) out << "warning: " << warning << "\n";

  out << "\nExact duplicates (byte-identical): " << exact_groups.size() << " groups, " << s.files_in_groups
      << " files, " << s.extra_copies << " extra copies\n"
      << "  groups spanning splits: " << s.cross_split_groups << "\n"
      << "  groups spanning classes (label conflicts): " << s.label_conflict_groups << "\n";
  if (!testing_split.empty())
    out << "  " << testing_split << " images with an exact copy in " << training_split << ": "
        << s.testing_with_training_exact << "\n";
  for (size_t k = 0; k < s.conflict_groups.size() && k < 5; ++k) {
    out << "    conflict:";
    for (int i : exact_groups[s.conflict_groups[k]]) out << " " << files[i].relative;
    out << "\n";
  }

  out << "\nNear duplicates (pHash distance <= " << near_threshold << " and thumbnail correlation >= "
      << std::setprecision(2) << min_correlation << ", not byte-identical): "
      << near_pairs.size() << " pairs in " << s.near_clusters << " clusters\n"
      << "  pairs spanning splits: " << s.near_cross_split << "\n"
      << "  pairs spanning classes (label conflicts): " << s.near_label_conflicts << "\n";
  for (size_t k = 0; k < s.conflict_near_pairs.size() && k < 5; ++k) {
    const NearPair& pair = near_pairs[s.conflict_near_pairs[k]];
    out << "    conflict: " << files[pair.a].relative << " ~ " << files[pair.b].relative << " (distance "
        << pair.distance << ", correlation " << pair.correlation << ")\n";
  }
  if (!testing_split.empty())
    out << "\n" << testing_split << " images with an exact or near copy in " << training_split << ": "
        << s.testing_with_training_any << "; without: " << dedup_testing.size() << "\n";
  return out.str();
}

}  // namespace mriscan
