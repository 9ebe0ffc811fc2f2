// DICOM transfer syntaxes (PS3.5 section 10 and annex A): which ones mriscan decodes, how each encodes the data
// set, and their names for messages.
//
// What it is: a table and the refusal of what is not in its accepted part (UnsupportedImageFormat, the server's
// 415, naming the UID and its name). What it is not: a parser (io/dicom_structure.h) or a decoder
// (io/dicom_image.h). The accepted ones are those Debian's packages decode: uncompressed (implicit and explicit VR
// little endian, explicit VR big endian), JPEG baseline, extended and lossless (GDCM's IJG builds for 8, 12 and 16
// bits), JPEG-LS (CharLS), JPEG 2000 (OpenJPEG) and RLE (our own; io/dicom_pixels.h). Deflate is refused: the
// whole data set is zlib-compressed, so its declared sizes cannot be checked before inflating it (docs/dicom.md).
#pragma once

#include <string>

namespace mriscan {

// How the data set after the file meta information is encoded.
enum class DicomEncoding { kImplicitLittle, kExplicitLittle, kExplicitBig };

struct TransferSyntax {
  const char* uid;
  const char* name;
  DicomEncoding encoding;
  bool encapsulated;  // compressed pixel data in fragments (PS3.5 A.4)
  bool accepted;      // decoded by mriscan
};

// The table's entry for `uid` (trailing NUL or space padding ignored), or nullptr for a UID it does not list.
const TransferSyntax* find_transfer_syntax(const std::string& uid);

// The entry of an accepted transfer syntax; else throws UnsupportedImageFormat naming the UID (when it is a
// well-formed UID: nothing else from the file is echoed) and its name.
const TransferSyntax& require_accepted_transfer_syntax(const std::string& uid, const std::string& source);

}  // namespace mriscan
