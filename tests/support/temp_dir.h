// Temporary folders for tests: TempDir (a fresh folder, removed when it goes out of scope, even after a test made it
// read-only) and TempDirTest (a GoogleTest fixture with one such folder per test, named after the test).
// What it is not: a sandbox; tests still write through ordinary paths.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <random>
#include <string>

namespace mriscan {

struct TempDir {
  std::filesystem::path path;
  // `name` makes the folder easy to find while debugging; a random number keeps concurrent tests apart.
  explicit TempDir(const std::string& name = "") {
    std::random_device device;
    path = std::filesystem::temp_directory_path() /
           ("mriscan_test_" + std::to_string(::getpid()) + "_" + std::to_string(device()) + "_" + name);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    namespace fs = std::filesystem;
    std::error_code ignored;
    fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ignored);  // a test may make it read-only
    fs::remove_all(path, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

// True if a temporary of write_file_atomically ("<path>.tmp.<pid>-<random>.<n>") for `path` is left in its folder.
inline bool has_temporary_of(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const std::string prefix = target.filename().string() + ".tmp";
  std::error_code ignored;
  for (const auto& entry : fs::directory_iterator(target.parent_path(), ignored))
    if (entry.path().filename().string().rfind(prefix, 0) == 0) return true;
  return false;
}

class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    temp_ = std::make_unique<TempDir>(std::string(info->test_suite_name()) + "_" + info->name());
    dir_ = temp_->path;
  }
  void TearDown() override { temp_.reset(); }
  std::string path(const std::string& file) const { return (dir_ / file).string(); }
  std::filesystem::path dir_;

 private:
  std::unique_ptr<TempDir> temp_;
};

}  // namespace mriscan
