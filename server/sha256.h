// SHA-256 (FIPS 180-4) of a byte buffer, as a lowercase hex string. The upload store names files by the hash of
// their content, so no client-provided name ever reaches the file system and duplicates are found by equality.
// What it is not: a streaming or constant-time implementation (it hashes public image bytes, not secrets).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mriscan {

// 64 hex characters.
std::string sha256_hex(const void* data, size_t size);
inline std::string sha256_hex(std::string_view bytes) { return sha256_hex(bytes.data(), bytes.size()); }

}  // namespace mriscan
