// Atomic file replacement: write to "<path>.tmp", fsync it, rename it over <path>, fsync the directory, so that a
// reader sees either the old file or the complete new one, and a crash or a full disk mid-write keeps the old one.
// What it is not: a lock; two writers of the same path race on the same temporary name.
#pragma once

#include <functional>
#include <string>

namespace mriscan {

// Runs `write(tmp_path)` with tmp_path = path + ".tmp", fsyncs the result, renames it over `path` and fsyncs
// the directory. If `write` throws, the temporary file is removed and the exception propagates; `path` is
// untouched. Used by write_safetensors, optim/checkpoint.h and the server's stores.
void write_file_atomically(const std::string& path, const std::function<void(const std::string& tmp_path)>& write);

}  // namespace mriscan
