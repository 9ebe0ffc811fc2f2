// A strict check of a JPEG stream with libjpeg-turbo, run before stb_image decodes the pixels.
//
// Why: stb_image is not hardened against hostile files (its own documentation says so), and Debian's build of it
// reads out of bounds on some corrupt JPEGs (a 640-byte file found by tests/fuzz/fuzz_image_decode: SEGV inside
// stbi_load_from_memory under ASan). libjpeg-turbo is fuzzed continuously upstream; here it reads the whole stream
// first (markers and every entropy-coded coefficient), and any error or corrupt-data warning (bad Huffman code,
// premature end, extraneous bytes before a marker) refuses the file, so stb only ever sees streams libjpeg reads
// cleanly. stb still produces the pixels, so decoded images, and therefore training, stay bit-identical to earlier
// runs.
// What it is not: a decoder whose pixels are used, nor a check of PNG files (image_io.cpp checks those).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace mriscan {

// Throws ImageError ("cannot decode SOURCE: corrupt JPEG (libjpeg: REASON)") unless libjpeg reads every marker and
// coefficient of the stream without an error or a warning.
void check_jpeg_stream(const uint8_t* bytes, size_t size, const std::string& source);

}  // namespace mriscan
