// write_file_atomically: temporary file, fsync, rename, directory fsync (see the header).
#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <stdexcept>

namespace mriscan {

namespace {

std::string errno_text() { return std::strerror(errno); }

// The pid alone is not unique across containers that share a volume (every container's server may be pid 1),
// so a random token drawn once per process comes with it.
std::string unique_temporary_name(const std::string& path) {
  static const std::string process_token = [] {
    char token[9];
    std::snprintf(token, sizeof(token), "%08x", std::random_device{}());
    return std::to_string(::getpid()) + "-" + token;
  }();
  static std::atomic<uint64_t> counter{0};
  return path + ".tmp." + process_token + "." + std::to_string(++counter);
}

}  // namespace

namespace {

// Inside a catch block: rethrows the current exception, as StorageFullError when it (a filesystem_error's code)
// or `errno_after` says the disk is full.
[[noreturn]] void rethrow_as_storage_full_if(int errno_after) {
  try {
    throw;
  } catch (const StorageFullError&) {
    throw;
  } catch (const std::filesystem::filesystem_error& error) {
    if (is_storage_full_errno(error.code().value())) throw StorageFullError(std::string("disk full: ") + error.what());
    throw;
  } catch (const std::exception& error) {
    if (is_storage_full_errno(errno_after)) throw StorageFullError(std::string("disk full: ") + error.what());
    throw;
  }
}

}  // namespace

bool is_storage_full_errno(int error_number) {
  return error_number == ENOSPC || error_number == EDQUOT || error_number == EFBIG;
}

std::string write_temporary_durably(const std::string& path,
                                    const std::function<void(const std::string& tmp_path)>& write) {
  const std::string tmp_path = unique_temporary_name(path);
  try {
    errno = 0;  // so that only the writer's own failure can classify as a full disk below
    write(tmp_path);
    // The writer may not have synced (callback mode): make the bytes durable before a rename publishes them,
    // otherwise a crash could leave a renamed but empty file.
    int fd = ::open(tmp_path.c_str(), O_RDONLY);
    if (fd < 0) throw std::runtime_error("cannot reopen '" + tmp_path + "' to sync it: " + errno_text());
    int rc = ::fsync(fd);
    ::close(fd);
    if (rc != 0) throw std::runtime_error("fsync of '" + tmp_path + "' failed: " + errno_text());
  } catch (...) {
    const int code = errno;  // of the failed call, for writers that report through streams
    std::error_code ignored;
    std::filesystem::remove(tmp_path, ignored);  // never leave a half-written temporary behind
    rethrow_as_storage_full_if(code);
  }
  return tmp_path;
}

void publish_temporary(const std::string& tmp_path, const std::string& path) {
  if (std::rename(tmp_path.c_str(), path.c_str()) != 0) {
    const std::string reason = errno_text();
    std::error_code ignored;
    std::filesystem::remove(tmp_path, ignored);
    throw std::runtime_error("cannot rename '" + tmp_path + "' to '" + path + "': " + reason);
  }
  // Sync the directory so the rename itself survives a crash. Best effort: the new file is already in place.
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  int dir_fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

void write_file_atomically(const std::string& path, const std::function<void(const std::string& tmp_path)>& write) {
  publish_temporary(write_temporary_durably(path, write), path);
}

}  // namespace mriscan
