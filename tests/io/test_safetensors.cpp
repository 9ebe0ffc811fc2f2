// Tests for io/safetensors and io/atomic_file: round trip, every validation error of the reader (truncated at
// several cut points, absurd header, invalid JSON, unknown dtype, bad offsets), and atomic writes that keep
// the previous file on a full disk or a read-only folder.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "tests/support/temp_dir.h"

namespace mriscan {
namespace {

namespace fs = std::filesystem;

using SafetensorsTest = TempDirTest;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A hand-made file: 8-byte little-endian length, the header text as given, then `data_bytes` zero bytes.
void write_raw(const std::string& path, const std::string& header, size_t data_bytes, uint64_t length_field = ~0ull) {
  uint64_t n = length_field == ~0ull ? header.size() : length_field;
  std::string bytes(reinterpret_cast<const char*>(&n), 8);
  bytes += header;
  bytes += std::string(data_bytes, '\0');
  write_bytes(path, bytes);
}

// Reads `path` expecting a std::runtime_error whose message contains every one of `parts`.
void expect_read_error(const std::string& path, const std::vector<std::string>& parts) {
  try {
    read_safetensors(path);
    FAIL() << "expected an error reading " << path;
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    for (const std::string& part : parts)
      EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
  }
}

SafetensorsFile sample_file() {
  SafetensorsFile file;
  file.add("z.conv", Tensor(Shape{2, 1, 3, 2}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
  file.add("a.bias", Tensor(Shape{3}, {-1.5f, 0.0f, 3.25f}));
  file.add("scalar", Tensor(Shape{}, {42.0f}));
  file.add("empty", Tensor(Shape{0, 4}));
  file.add("matrix", Tensor(Shape{2, 2}, {1e-30f, -1e30f, 0.1f, 7.0f}));
  file.metadata = {{"epoch", "7"}, {"note", "hello \"world\""}};
  return file;
}

// ---------------------------------------------------------------------------------------------------------------
// safetensors

TEST_F(SafetensorsTest, RoundTripKeepsOrderValuesAndMetadata) {
  const SafetensorsFile original = sample_file();
  write_safetensors(path("m.safetensors"), original);
  EXPECT_FALSE(has_temporary_of(path("m.safetensors")));
  const SafetensorsFile loaded = read_safetensors(path("m.safetensors"));
  EXPECT_EQ(loaded.names, original.names);  // file order = insertion order, not alphabetical
  EXPECT_EQ(loaded.metadata, original.metadata);
  for (const std::string& name : original.names) {
    EXPECT_EQ(loaded.tensors.at(name).shape(), original.tensors.at(name).shape()) << name;
    EXPECT_EQ(loaded.tensors.at(name).to_vector(), original.tensors.at(name).to_vector()) << name;
  }
  // The data starts 8-byte aligned, as the reference writer does.
  const std::string bytes = read_bytes(path("m.safetensors"));
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + (12 + 3 + 1 + 0 + 4) * sizeof(float));
}

TEST_F(SafetensorsTest, TruncatedAtSeveralCutPoints) {
  write_safetensors(path("full.safetensors"), sample_file());
  const std::string bytes = read_bytes(path("full.safetensors"));
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  // Cuts inside the length field, inside the header, right after it, inside the data, and one byte short.
  const std::vector<std::pair<size_t, std::string>> cuts = {
      {0, "too short"},     {5, "too short"},          {8, "header length"},           {8 + n / 2, "header length"},
      {8 + n, "truncated"}, {8 + n + 10, "truncated"}, {bytes.size() - 1, "truncated"}};
  for (const auto& [cut, expected] : cuts) {
    const std::string cut_path = path("cut_" + std::to_string(cut) + ".safetensors");
    write_bytes(cut_path, bytes.substr(0, cut));
    SCOPED_TRACE("cut at " + std::to_string(cut));
    expect_read_error(cut_path, {cut_path, expected});
  }
}

TEST_F(SafetensorsTest, HeaderLengthLargerThanFileOrAbsurd) {
  const std::string header = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  write_raw(path("long.safetensors"), header, 4, header.size() + 100);
  expect_read_error(path("long.safetensors"), {"long.safetensors", "header length", "exceeds"});
  write_raw(path("absurd.safetensors"), header, 4, 1ull << 62);
  expect_read_error(path("absurd.safetensors"), {"absurd.safetensors", "absurd"});
}

TEST_F(SafetensorsTest, InvalidJson) {
  write_raw(path("bad.safetensors"), R"({"w":{"dtype":"F32","shape":[1],)", 4);
  expect_read_error(path("bad.safetensors"), {"bad.safetensors", "not valid JSON"});
  write_raw(path("array.safetensors"), "[1, 2]", 0);
  expect_read_error(path("array.safetensors"), {"not a JSON object"});
  // Found by tests/fuzz/fuzz_safetensors: a number too large for a double is json's out_of_range, not a parse
  // error, and used to escape as an exception of another type.
  write_raw(path("overflow.safetensors"), "185E9999", 0);
  expect_read_error(path("overflow.safetensors"), {"overflow.safetensors", "not valid JSON"});
}

TEST_F(SafetensorsTest, OtherDtypesAreValidatedAndNamedNotRead) {
  // A PyTorch state dict's BatchNorm counter: I64, 8 bytes, listed but not read.
  write_raw(path("i64.safetensors"),
            R"({"ok":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
            R"("features.0.1.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[4,12]}})",
            12);
  SafetensorsFile file = read_safetensors(path("i64.safetensors"));
  EXPECT_EQ(file.names, std::vector<std::string>{"ok"});
  EXPECT_EQ(file.other_dtypes.at("features.0.1.num_batches_tracked"), "I64");
  // Their byte ranges are checked with their own element size, and an unknown dtype is refused.
  write_raw(path("short.safetensors"), R"({"n":{"dtype":"I64","shape":[2],"data_offsets":[0,8]}})", 8);
  expect_read_error(path("short.safetensors"), {"'n'", "I64", "16 bytes"});
  write_raw(path("unknown.safetensors"), R"({"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}})", 4);
  expect_read_error(path("unknown.safetensors"), {"unknown.safetensors", "'w'", "unknown dtype 'Q4'"});
}

TEST_F(SafetensorsTest, ShapeOffsetsMismatchOutOfRangeAndOverlap) {
  write_raw(path("mismatch.safetensors"), R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", 20);
  expect_read_error(path("mismatch.safetensors"), {"'w'", "[2,3]", "24 bytes", "[0,20]"});
  write_raw(path("range.safetensors"), R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 12);
  expect_read_error(path("range.safetensors"), {"'w'", "past the end"});
  write_raw(
      path("overlap.safetensors"),
      R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
      16);
  expect_read_error(path("overlap.safetensors"), {"overlap", "'a'", "'b'"});
  write_raw(path("rank5.safetensors"), R"({"w":{"dtype":"F32","shape":[1,1,1,1,1],"data_offsets":[0,4]}})", 4);
  expect_read_error(path("rank5.safetensors"), {"'w'", "rank 5"});
  write_raw(path("negative.safetensors"), R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4);
  expect_read_error(path("negative.safetensors"), {"'w'", "negative"});
  write_raw(path("nofield.safetensors"), R"({"w":{"dtype":"F32","shape":[1]}})", 4);
  expect_read_error(path("nofield.safetensors"), {"'w'", "data_offsets"});
  write_raw(path("meta.safetensors"), R"({"__metadata__":{"epoch":3}})", 0);
  expect_read_error(path("meta.safetensors"), {"metadata 'epoch'"});
  write_raw(path("unnamed.safetensors"), R"({"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4);
  expect_read_error(path("unnamed.safetensors"), {"empty name"});
}

TEST_F(SafetensorsTest, WriteIntoMissingDirectoryThrowsWithPath) {
  const std::string bad = path("no/such/dir/m.safetensors");
  try {
    write_safetensors(bad, sample_file());
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
}

TEST_F(SafetensorsTest, FullDiskLeavesPreviousFileIntact) {
  // A file-size limit makes write() fail with EFBIG part-way, exactly like a full disk (works even as root).
  const std::string target = path("m.safetensors");
  write_safetensors(target, sample_file());
  const std::string before = read_bytes(target);

  SafetensorsFile big;
  big.add("big", Tensor(Shape{1 << 20}));  // 4 MiB
  struct rlimit old_limit {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  struct rlimit small = old_limit;
  small.rlim_cur = 64 * 1024;
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);  // otherwise exceeding the limit kills the process
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string message;
  try {
    write_safetensors(target, big);
  } catch (const StorageFullError& e) {
    message = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);

  EXPECT_NE(message.find(target), std::string::npos) << "no error naming the file: '" << message << "'";
  EXPECT_EQ(read_bytes(target), before);
  EXPECT_FALSE(has_temporary_of(target));
  EXPECT_EQ(read_safetensors(target).names, sample_file().names);
}

TEST_F(SafetensorsTest, ReadOnlyDirectoryLeavesPreviousFileIntact) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  const std::string target = path("ro/m.safetensors");
  fs::create_directories(dir_ / "ro");
  write_safetensors(target, sample_file());
  const std::string before = read_bytes(target);
  fs::permissions(dir_ / "ro", fs::perms::owner_read | fs::perms::owner_exec);
  EXPECT_THROW(write_safetensors(target, SafetensorsFile{}), std::runtime_error);
  fs::permissions(dir_ / "ro", fs::perms::owner_all);
  EXPECT_EQ(read_bytes(target), before);
}

TEST(Safetensors, AddRejectsDuplicatesAndReservedNames) {
  SafetensorsFile file;
  file.add("w", Tensor(Shape{1}));
  EXPECT_THROW(file.add("w", Tensor(Shape{1})), std::invalid_argument);
  EXPECT_THROW(file.add("__metadata__", Tensor(Shape{1})), std::invalid_argument);
  EXPECT_THROW(file.add("u", Tensor()), std::invalid_argument);
}

}  // namespace
}  // namespace mriscan
