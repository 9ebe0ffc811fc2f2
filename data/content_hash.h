// The one content hash for images: SHA-256 of the file bytes (OpenSSL's libcrypto), as 64 lowercase hex digits.
// The upload store names files by it (so no client-provided name reaches the file system, and a scan uploaded
// twice is stored once), /dataset_stats and `mriscan data check` find byte-identical files by it.
// Equal hashes are taken as equal bytes: no SHA-256 collision is known, and finding one is far beyond reach.
// What it is not: a perceptual hash (near-duplicates are data/image_hash.h) or a MAC (it hashes public bytes).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mriscan {

std::string sha256_hex(const void* data, size_t size);
inline std::string sha256_hex(std::string_view bytes) { return sha256_hex(bytes.data(), bytes.size()); }
// Of a file's bytes, read 1 MiB at a time; throws std::runtime_error naming the file if it cannot be read.
std::string sha256_file_hex(const std::string& path);

}  // namespace mriscan
