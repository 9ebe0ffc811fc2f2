// A GoogleTest fixture with a fresh temporary folder per test (named after the test), removed afterwards even
// when a test made it read-only. What it is not: a sandbox; tests still write through ordinary paths.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace mriscan {

class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("mriscan_test_" + std::to_string(::getpid()) + "_" + info->test_suite_name() + "_" + info->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ignored;
    namespace fs = std::filesystem;
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add, ignored);  // a test may make it read-only
    std::filesystem::remove_all(dir_, ignored);
  }
  std::string path(const std::string& file) const { return (dir_ / file).string(); }
  std::filesystem::path dir_;
};

}  // namespace mriscan
