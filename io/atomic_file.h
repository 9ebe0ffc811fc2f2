// Atomic file replacement: write to a temporary "<path>.tmp.<pid>-<random>.<n>" (unique per process and call,
// also across containers sharing a volume, so two writers of the same path never share or delete each other's
// temporary), fsync it, rename it over <path>, fsync
// the directory, so that a reader sees either the old file or one complete new one, and a crash or a full disk
// mid-write keeps the old one. A full disk (ENOSPC, EDQUOT, or EFBIG under a file-size limit) is reported as
// StorageFullError, so callers can say so (the server answers 507).
// What it is not: a lock; of two concurrent writers of one path, the last rename wins.
#pragma once

#include <functional>
#include <stdexcept>
#include <string>

namespace mriscan {

struct StorageFullError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// True for the errno values that mean "no space left" (ENOSPC, EDQUOT, EFBIG).
bool is_storage_full_errno(int error_number);

// Runs `write(tmp_path)` with the temporary name described above, fsyncs the result, renames it over `path` and fsyncs
// the directory. If `write` throws, the temporary file is removed and the exception propagates (as
// StorageFullError when errno, or a std::filesystem_error's code, says the disk is full); `path` is untouched. Used by write_safetensors, optim/checkpoint.h and the server's stores.
void write_file_atomically(const std::string& path, const std::function<void(const std::string& tmp_path)>& write);

// The same in two steps, for a caller that must publish at a moment of its choosing (the model registry renames
// inside the database transaction that records the file): the first writes and fsyncs the temporary and returns
// its name (removing it and rethrowing on failure); the second renames it over `path` and fsyncs the directory
// (removing it if the rename fails).
std::string write_temporary_durably(const std::string& path,
                                    const std::function<void(const std::string& tmp_path)>& write);
void publish_temporary(const std::string& tmp_path, const std::string& path);

}  // namespace mriscan
