// UTF-8 checks for text that came from outside (file names, URL paths, ids) before it reaches a JSON answer, a
// log line or a drawing: nlohmann::json::dump throws on invalid UTF-8, cairo draws nothing after it, and a raw
// control character in a log line can forge another line.
// What it is not: a Unicode library (no normalisation, no widths).
#pragma once

#include <string>

namespace mriscan {

// The length of the well-formed UTF-8 sequence at text[i] (1-4), or 0: a stray continuation byte, a truncated
// sequence, an overlong form, a surrogate or a code point above U+10FFFF.
size_t utf8_sequence_length(const std::string& text, size_t i);

bool is_valid_utf8(const std::string& text);

// `text` with control characters and malformed bytes as '?', everything else (any language) as written.
std::string printable_utf8(const std::string& text);

}  // namespace mriscan
